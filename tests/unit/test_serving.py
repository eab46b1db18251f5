"""The serving hooks in-process: decoding, the pixel-scale rule, MNIST-style images, encoding."""
import io
import json
import re
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image

from container import serving, settings
from container.__main__ import execution_parameters, response_limit
from model.networks import build_model, make_config
from tests.digits import draw_digit, encode


def test_one_scale_rule_for_every_type():
    image = np.zeros((28, 28), np.uint8)
    image[10:18, 12:16] = 255
    as_uint8 = serving.to_batch(image)
    as_float = serving.to_batch(image / 255.0)
    assert as_uint8.shape == (1, 1, 28, 28) and as_uint8.max() == 1.0
    assert np.allclose(as_uint8, as_float)
    csv = serving.input_fn(",".join(map(str, image.reshape(-1))).encode(), "text/csv")
    assert np.allclose(csv, as_uint8)


def test_scale_is_decided_per_image():
    faint = np.full((784,), 0.5)
    bright = np.full((784,), 128.0)
    batch = serving.to_batch(np.stack([faint, bright]))
    assert np.allclose(batch[0], 0.5) and np.allclose(batch[1], 128 / 255)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64, np.float32, np.float64])
def test_scaling_leaves_the_callers_array_as_it_was(dtype):
    """float32 on the 0-1 scale is used as it is; anything else is scaled into a new array."""
    pixels = np.arange(2 * 784).reshape(2, 28, 28) % 256
    pixels[1] = pixels[1] > 100  # a 0-1 image beside a 0-255 one
    given = pixels.astype(dtype)
    kept = given.copy()
    batch = serving.to_batch(given)
    assert np.array_equal(given, kept)
    assert batch.dtype == np.float32
    as_float32 = kept.astype(np.float32)
    assert np.array_equal(batch[:, 0], np.stack([as_float32[0] / 255, as_float32[1]]))
    unit = as_float32 / 255
    assert np.shares_memory(serving.to_batch(unit), unit)


@pytest.mark.parametrize("pixels, named", [
    (np.full((2, 784), 256, np.uint16), "from 256 to 256"),
    (np.full((2, 784), -3, np.int8), "from -3 to -3"),
    (np.full((2, 784), 255.5, np.float32), "from 255.5 to 255.5"),
])
def test_pixels_out_of_range_are_named(pixels, named):
    with pytest.raises(serving.RequestError, match=f"{named}; pixels must lie in 0-1 or 0-255"):
        serving.to_batch(pixels)


@pytest.mark.parametrize("shape", [(28, 28), (784,), (4, 28, 28), (4, 784), (4, 1, 28, 28)])
def test_accepted_shapes(shape):
    assert serving.to_batch(np.zeros(shape)).shape[1:] == (1, 28, 28)


@pytest.mark.parametrize("layout", ["C", "F", ">f4", "<f8", "uint8"])
def test_npy_is_read_as_np_load_reads_it(layout):
    pixels = np.random.default_rng(0).random((3, 28, 28))
    array = {"C": pixels.astype(np.float32), "F": np.asfortranarray(pixels.astype(np.float32)),
             ">f4": pixels.astype(">f4"), "<f8": pixels, "uint8": (pixels * 255).astype(np.uint8)}
    buffer = io.BytesIO()
    np.save(buffer, array[layout])
    for body in (buffer.getvalue(), bytearray(buffer.getvalue())):
        batch = serving.input_fn(body, "application/x-npy")
        assert np.array_equal(batch, serving.to_batch(np.load(io.BytesIO(body))))


def test_npy_with_a_header_that_leaves_the_pixels_unaligned():
    """Other writers need not pad the header to a multiple of 64 bytes as numpy does."""
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).random((2, 784), np.float32))
    body = buffer.getvalue()
    length = int.from_bytes(body[8:10], "little")
    header = body[10:10 + length].rstrip(b"\n") + b" \n"
    odd = body[:8] + len(header).to_bytes(2, "little") + header + body[10 + length:]
    batch = serving.input_fn(bytearray(odd), "application/x-npy")
    assert batch.flags.aligned
    assert np.array_equal(batch, serving.to_batch(np.load(io.BytesIO(odd))))


def test_npy_pixels_are_read_where_they_lie_in_the_body():
    """The server hands the handler a bytearray: float32 0-1 pixels are used in place."""
    buffer = io.BytesIO()
    np.save(buffer, np.full((2, 784), 0.5, np.float32))
    body = bytearray(buffer.getvalue())
    batch = serving.input_fn(body, "application/x-npy")
    assert np.shares_memory(batch, np.frombuffer(body, np.uint8))


@pytest.mark.parametrize("array, cut, message", [
    (np.array([{"a": 1}], dtype=object), 0, "Object arrays cannot be loaded"),
    (np.zeros((4, 784), np.float32), 784 * 4, "(12544 bytes), but 9408 bytes follow its header"),
    (np.zeros((4, 784), np.float32), 10, "declares shape (4, 784) of float32 (12544 bytes), "
                                         "but 12534 bytes follow its header"),
])
def test_npy_that_cannot_be_read(array, cut, message):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    body = buffer.getvalue()[:len(buffer.getvalue()) - cut]
    with pytest.raises(serving.RequestError, match=re.escape(message)) as raised:
        serving.input_fn(body, "application/x-npy")
    assert raised.value.status_code == 400


@pytest.mark.parametrize("fmt, newline", [("%d", "\n"), ("%.6f", "\r\n"), ("%.3e", "\n")])
def test_csv_is_read_as_float_reads_each_value(fmt, newline):
    pixels = np.random.default_rng(1).integers(0, 256, (5, 784)).astype(np.float64)
    if fmt != "%d":
        pixels /= 255
    buffer = io.StringIO()
    np.savetxt(buffer, pixels, fmt=fmt, delimiter=",", newline=newline)
    text = "\n" + buffer.getvalue() + " \n"  # blank lines are skipped
    by_value = [[float(v) for v in row.split(",")] for row in text.splitlines() if row.strip()]
    batch = serving.input_fn(text.encode(), "text/csv")
    assert np.array_equal(batch, serving.to_batch(np.array(by_value, np.float32)))


ONES = ",".join(["1"] * 784)


@pytest.mark.parametrize("body, message", [
    (f"{ONES}\n{ONES}\nx,{ONES[2:]}", "not a number in row 3 (could not convert string to "
                                      "float: 'x')"),
    (f"{ONES}\n{ONES[2:]}", "rows have [783, 784] values"),
    ("1,2,3", "rows have [3] values"),
    (" \n", "CSV body holds no images"),
])
def test_csv_that_cannot_be_read(body, message):
    with pytest.raises(serving.RequestError, match=re.escape(message)) as raised:
        serving.input_fn(body.encode(), "text/csv")
    assert raised.value.status_code == 400


def test_json_lines_of_one_image_each_give_what_line_by_line_gives():
    rng = np.random.default_rng(2)
    lines = [rng.integers(0, 256, 784).tolist(), (rng.random((28, 28)) * 255).tolist(),
             rng.random((28, 28)).tolist(), rng.integers(0, 2, (28, 28)).tolist()]
    for group in (lines[:1] * 3, lines[1:3], lines[1:], lines):  # the last: shapes differ
        body = "\n".join(json.dumps(line) for line in group).encode()
        by_line = np.concatenate([serving.to_batch(line) for line in group])
        assert np.array_equal(serving.input_fn(body, "application/jsonlines"), by_line)


@pytest.mark.parametrize("bad_line, message", [
    ([300] * 784, "line 3 has pixel values from 300 to 300"),
    ("[" + ",".join(["NaN"] * 784) + "]", "line 3 holds NaN or infinity"),
    ([1] * 783 + [None], "line 3 is not an array of real numbers"),
    ([1] * 28, "line 3 has shape (28,)"),
])
def test_json_lines_name_the_line_that_cannot_be_read(bad_line, message):
    lines = [json.dumps([1] * 784)] * 2 + [bad_line if isinstance(bad_line, str)
                                           else json.dumps(bad_line)]
    with pytest.raises(serving.RequestError, match=re.escape(message)) as raised:
        serving.input_fn("\n".join(lines).encode(), "application/jsonlines")
    assert raised.value.status_code == 400


def test_json_lines_that_would_stack_into_one_image_are_refused():
    body = "\n".join([json.dumps([1] * 28)] * 28).encode()  # 28 lines of 28 numbers
    with pytest.raises(serving.RequestError, match=re.escape("line 1 has shape (28,)")):
        serving.input_fn(body, "application/jsonlines")


def test_charset_parameter_is_ignored():
    batch = serving.input_fn(b"[" + b",".join([b"0"] * 784) + b"]",
                             "application/json; charset=utf-8")
    assert batch.shape == (1, 1, 28, 28)


def test_mnist_style_crops_fits_and_centres_the_ink():
    image = draw_digit(1, size=(300, 300), width=20, margin=0.05)
    canvas = np.zeros((300, 300), np.uint8)  # the digit far off in a corner
    canvas[:] = 235
    canvas[200:300, 200:300] = np.asarray(image.resize((100, 100)))
    out = serving.mnist_style(Image.fromarray(canvas))
    rows, cols = np.nonzero(out > 0.05)
    assert out.shape == (28, 28) and out.max() == 1.0
    assert rows.max() - rows.min() + 1 <= 21  # fitted into 20x20 (plus resampling spill)
    cy = (out.sum(1) * np.arange(28)).sum() / out.sum()
    cx = (out.sum(0) * np.arange(28)).sum() / out.sum()
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1


def test_light_on_dark_and_transparent_images():
    dark = Image.eval(draw_digit(7), lambda v: 255 - v)  # chalk on a blackboard
    a = serving.mnist_style(draw_digit(7))
    b = serving.mnist_style(dark)
    assert np.abs(a - b).max() < 0.05
    rgba = Image.new("RGBA", (200, 260), (0, 0, 0, 0))
    rgba.putalpha(Image.eval(draw_digit(7), lambda v: 255 - v))  # black ink, clear paper
    c = serving.mnist_style(rgba)
    assert np.abs(a - c).max() < 0.2


def test_jpeg_and_png_decode_alike():
    png = serving.input_fn(encode(draw_digit(3), "PNG"), "image/png")
    jpeg = serving.input_fn(encode(draw_digit(3).convert("RGB"), "JPEG"), "image/jpeg")
    assert np.abs(png - jpeg).mean() < 0.02


@pytest.mark.parametrize("accept,expected", [
    (None, "application/json"), ("*/*", "application/json"),
    ("text/csv", "text/csv"), ("image/png, application/x-npy;q=0.5", "application/x-npy"),
])
def test_accept_negotiation(accept, expected):
    assert serving.choose_accept(accept) == expected


def test_unsupported_accept_is_406():
    with pytest.raises(serving.RequestError) as raised:
        serving.choose_accept("image/png")
    assert raised.value.status_code == 406
    assert "application/x-npy" in json.loads(raised.value.body())["accepted_response_types"]


def test_outputs_agree():
    probabilities = np.eye(10, dtype=np.float32)[[3, 8]] * 0.9 + 0.01
    as_json = json.loads(serving.output_fn(probabilities, "application/json")[0])["predictions"]
    assert [p["label"] for p in as_json] == [3, 8] and as_json[0]["confidence"] == 0.91
    lines = serving.output_fn(probabilities, "application/jsonlines")[0].splitlines()
    assert [json.loads(line) for line in lines] == as_json
    csv = serving.output_fn(probabilities, "text/csv")[0].splitlines()
    assert csv[0].split(",")[:2] == ["3", "0.910000"]
    npy, media_type = serving.output_fn(probabilities, "application/x-npy")
    assert media_type == "application/x-npy"
    assert np.array_equal(np.load(io.BytesIO(npy)), probabilities)


def test_model_fn_prefers_the_state_dict_and_falls_back_to_torchscript(tmp_path):
    net = build_model(make_config("bncnn", hidden_channels=4)).eval()
    with pytest.raises(FileNotFoundError, match="neither model.pth nor model.pt"):
        serving.model_fn(str(tmp_path))
    torch.jit.script(net).save(str(tmp_path / "model.pt"))
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    from_script = serving.predict_fn(x, serving.model_fn(str(tmp_path)))
    torch.save({"format": 1, "config": asdict(make_config("bncnn", hidden_channels=4)),
                "state_dict": net.state_dict()}, tmp_path / "model.pth")
    from_state = serving.predict_fn(x, serving.model_fn(str(tmp_path)))
    assert np.allclose(from_script, from_state, atol=1e-5)


@pytest.mark.parametrize("accept", list(serving.ENCODERS))
def test_no_answer_spends_more_than_its_share_on_an_image(accept):
    rng = np.random.default_rng(0)
    for rows in (np.full((500, 10), 0.123457, np.float32),  # every value at full length
                 rng.dirichlet(np.full(10, 0.3), 2000).astype(np.float32)):
        body, _ = serving.output_fn(rows, accept)
        assert len(body) <= len(rows) * settings.MAX_ANSWER_BYTES_PER_IMAGE


def test_the_server_may_send_the_answer_for_the_most_images_a_request_holds():
    most_in_npz = settings.MAX_NPZ_ARRAY_BYTES // 784
    assert response_limit(6) >= most_in_npz * settings.MAX_ANSWER_BYTES_PER_IMAGE
    assert response_limit(1000) >= 1000 * 2**20 // 784 * settings.MAX_ANSWER_BYTES_PER_IMAGE
    assert response_limit(10**6) == 2**31 - 1  # the most the server's setting holds


def test_batch_transform_is_told_to_keep_every_worker_busy_within_the_payload_limit():
    assert execution_parameters(2, 6.0) == {"MaxConcurrentTransforms": 2, "MaxPayloadInMB": 6}
    assert execution_parameters(4, 2.5) == {"MaxConcurrentTransforms": 4, "MaxPayloadInMB": 2}
    assert execution_parameters(8, 500) == {"MaxConcurrentTransforms": 8, "MaxPayloadInMB": 100}
    # The API takes whole megabytes from 1: a smaller limit leaves the job's own setting.
    assert execution_parameters(1, 0.5) == {"MaxConcurrentTransforms": 1}


def tiny_model_dir(tmp_path):
    """``tmp_path`` with the checkpoint of an untrained 4-channel bncnn, as training writes it."""
    config = make_config("bncnn", hidden_channels=4)
    torch.save({"format": 1, "config": asdict(config),
                "state_dict": build_model(config).state_dict()}, tmp_path / "model.pth")
    return str(tmp_path)


class Passes:
    """A model that records how many images each pass through it holds."""

    def __init__(self, model):
        self.model, self.device, self.sizes = model, model.device, []

    def __call__(self, x):
        self.sizes.append(len(x))
        return self.model(x)


def test_a_large_batch_goes_through_the_net_in_passes(tmp_path):
    model = Passes(serving.model_fn(tiny_model_dir(tmp_path)))
    x = np.random.default_rng(0).random((serving.MAX_PASS + 904, 1, 28, 28), dtype=np.float32)
    probabilities = serving.predict_fn(x, model)
    assert model.sizes == [serving.MAX_PASS, 904]
    assert probabilities.shape == (len(x), 10)
    assert np.allclose(probabilities[-904:], serving.predict_fn(x[-904:], model), atol=1e-6)


def test_on_the_cpu_onnx_runtime_gives_torchs_answers(tmp_path):
    model_dir = tiny_model_dir(tmp_path)
    model = serving.model_fn(model_dir, "cpu")
    assert isinstance(model, serving.OnnxModel)
    on_torch = serving.torch_model(serving.load_net(model_dir), model.device)
    x = np.random.default_rng(1).random((300, 1, 28, 28), dtype=np.float32)
    was = torch.get_num_threads()
    try:
        for size in (1, 3, 300):  # each of torch's graphs, and one session per thread count
            for threads in (1, 2):
                torch.set_num_threads(threads)
                expected = serving.predict_fn(x[:size], on_torch)
                assert np.allclose(serving.predict_fn(x[:size], model), expected, atol=1e-6)
    finally:
        torch.set_num_threads(was)
    assert sorted(model._sessions) == [1, 2]


# The server's load and fork, in a process of its own: torch's OpenMP threads, which other tests
# start in this one, do not survive a fork either. The parent loads on one thread, as the
# handler does, then makes a session with a thread of its own.
FORKED_WORKER = """
import os, sys
import numpy as np, torch
from container import serving
torch.set_num_threads(1)
model = serving.model_fn(sys.argv[1], "cpu")
x = np.random.default_rng(2).random((100, 1, 28, 28), dtype=np.float32)
expected = serving.predict_fn(x, model)
model.session(2).run(None, {"pixels": x})
for threads in (1, 2):
    pid = os.fork()
    if pid == 0:
        torch.set_num_threads(threads)
        os._exit(0 if np.allclose(serving.predict_fn(x, model), expected, atol=1e-6) else 3)
    assert os.waitpid(pid, 0)[1] == 0, f"the worker on {threads} threads answered wrong"
print(sorted(model._sessions))
"""


def test_a_forked_worker_runs_on_sessions_of_its_own(tmp_path):
    """The server forks its workers after loading: the sessions made before the fork, whose
    threads stay behind, are neither used nor freed in a worker, which makes its own."""
    done = subprocess.run([sys.executable, "-c", FORKED_WORKER, tiny_model_dir(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "[1, 2]"


class WithAnOpOnnxLacks(torch.nn.Module):
    """A net whose logits are multiplied by erfcx(0 x) = 1: ONNX has no operator for erfcx."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x) * torch.special.erfcx(0 * x.sum())


def test_a_net_onnx_runtime_cannot_run_is_served_by_torch(tmp_path, caplog):
    net = build_model(make_config("bncnn", hidden_channels=4)).eval()
    torch.jit.script(WithAnOpOnnxLacks(net)).save(str(tmp_path / "model.pt"))
    model = serving.model_fn(str(tmp_path), "cpu")
    assert isinstance(model, serving.Model)
    assert "the model runs on torch" in caplog.text and "erfcx" in caplog.text
    x = np.random.default_rng(3).random((5, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
    assert np.allclose(serving.predict_fn(x, model), expected, atol=1e-6)


def test_a_few_images_run_without_onednn_and_the_switch_is_restored(tmp_path):
    model = serving.torch_model(serving.load_net(tiny_model_dir(tmp_path)), torch.device("cpu"))
    seen, frozen = [], model.net
    model.net = lambda x: seen.append((len(x), torch.backends.mkldnn.enabled)) or frozen(x)
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    few, more = serving.predict_fn(x[:model.FEW], model), serving.predict_fn(x, model)
    assert seen == [(model.FEW, False), (5, True)]
    assert torch.backends.mkldnn.enabled
    assert np.allclose(few, more[:model.FEW], atol=1e-6)
    with pytest.raises(RuntimeError):  # a failing pass still switches oneDNN back on
        serving.predict_fn(np.zeros((1, 2, 28, 28), np.float32), model)
    assert torch.backends.mkldnn.enabled


def test_a_pass_of_the_default_net_keeps_every_activation_under_mallocs_mmap_ceiling():
    """Above 32 MB glibc's malloc maps fresh pages for every allocation, and a pass spends a
    third of its time faulting them in: MAX_PASS images of the default net stay below that."""
    net = build_model(make_config("bncnn")).for_inference()
    largest = []
    for layer in net.modules():
        if not list(layer.children()):
            layer.register_forward_hook(lambda _, __, out: largest.append(out.nelement()))
    with torch.no_grad():
        net(torch.zeros(1, 1, 28, 28))
    assert max(largest) * 4 * serving.MAX_PASS <= 32 * 2**20
