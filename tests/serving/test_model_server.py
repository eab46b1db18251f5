"""The real multi-model-server, started by `python -m container serve`, over HTTP."""

import io
import json
import os
import signal
import socket

import numpy as np
import pytest

from container.serving.hooks import model_fn, predict_fn
from container.serving.pixels import to_batch
from local_test.server import LocalServer, free_port, npy, request
from tests.container.fuzz import npz_bomb
from tests.digits import VARIANTS, draw_digit, encode
from tests.helpers import PAYLOAD_LIMIT_MB

JSON, NPY, NPZ, CSV, JSONL = (
    "application/json",
    "application/x-npy",
    "application/x-npz",
    "text/csv",
    "application/jsonlines",
)


@pytest.fixture(scope="module")
def images(mnist):
    """Real test images and labels the training run never saw as training data."""
    return mnist["x_test"][:2000], mnist["y_test"][:2000]


def labels_of(body):
    return [p["label"] for p in json.loads(body)["predictions"]]


def test_ping_is_healthy_and_says_so(server):
    status, body = server.ping()
    assert status == 200 and body["status"] == "Healthy" and body["ready_workers"] >= 1


def test_execution_parameters_tell_batch_transform_to_keep_every_worker_busy(server):
    status, headers, body = request(server.url + "/execution-parameters")
    assert status == 200 and headers["content-type"] == JSON
    workers = len(os.sched_getaffinity(0))  # the default: a worker per core
    assert json.loads(body) == {
        "MaxConcurrentTransforms": workers,
        "MaxPayloadInMB": PAYLOAD_LIMIT_MB,
    }
    status, headers, body = request(server.url + "/execution-parameters", b"{}", method="POST")
    assert status == 405 and headers["Allow"] == "GET"
    assert json.loads(body) == {"message": "/execution-parameters answers GET only"}


@pytest.mark.parametrize("shape", [(28, 28), (784,), (3, 28, 28), (3, 784), (3, 1, 28, 28)])
def test_npy_shapes(server, images, shape):
    x, y = images
    n = 1 if shape in ((28, 28), (784,)) else 3
    array = x[:n].reshape(shape)
    status, _headers, body = server.invoke(npy(array), NPY)
    assert status == 200, body
    assert labels_of(body) == list(y[:n])


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x[0].tolist(),  # one image, 28x28
        lambda x: x[0].reshape(-1).tolist(),  # one image, 784 numbers
        lambda x: (x[:3] / 255.0).tolist(),  # a list, 0-1 scale
        lambda x: {"instances": x[:3].reshape(3, -1).tolist()},  # SageMaker / TF-Serving
    ],
)
def test_json_forms(server, images, make):
    x, y = images
    status, headers, body = server.invoke(json.dumps(make(x)).encode(), JSON)
    assert status == 200, body
    assert headers["content-type"].startswith(JSON)
    predictions = json.loads(body)["predictions"]
    assert [p["label"] for p in predictions] == list(y[: len(predictions)])
    for p in predictions:
        assert len(p["probabilities"]) == 10 and abs(sum(p["probabilities"]) - 1) < 1e-3
        assert p["confidence"] == max(p["probabilities"])


def test_csv_jsonlines_and_npz_in(server, images):
    x, y = images
    rows = "\n".join(",".join(str(v) for v in image.reshape(-1)) for image in x[:4])
    lines = "\n".join(json.dumps(image.tolist()) for image in x[:4])
    buffer = io.BytesIO()
    np.savez(buffer, x=x[:4])
    for body, content_type in ((rows, CSV), (lines, JSONL), (buffer.getvalue(), NPZ)):
        body = body.encode() if isinstance(body, str) else body
        status, _, answer = server.invoke(body, content_type)
        assert status == 200, (content_type, answer)
        assert labels_of(answer) == list(y[:4]), content_type


def test_every_response_type(server, images):
    x, y = images
    body = npy(x[:5])
    status, headers, answer = server.invoke(body, NPY, accept=NPY)
    probabilities = np.load(io.BytesIO(answer))
    assert status == 200 and headers["content-type"] == NPY
    assert probabilities.shape == (5, 10) and list(probabilities.argmax(1)) == list(y[:5])
    status, headers, answer = server.invoke(body, NPY, accept=CSV)
    rows = [line.split(",") for line in answer.decode().splitlines()]
    assert headers["content-type"].startswith(CSV) and [int(r[0]) for r in rows] == list(y[:5])
    assert all(len(r) == 12 for r in rows)
    status, headers, answer = server.invoke(body, NPY, accept=JSONL)
    records = [json.loads(line) for line in answer.decode().splitlines()]
    assert [r["label"] for r in records] == list(y[:5])
    status, headers, answer = server.invoke(body, NPY, accept="text/html, application/json;q=0.9")
    assert status == 200 and headers["content-type"].startswith(JSON)


def test_a_batch_of_official_test_images_keeps_the_models_accuracy(
    server, images, trained_model_dir
):
    x, y = images
    status, _, answer = server.invoke(npy(x), NPY, accept=NPY)
    assert status == 200
    served = np.load(io.BytesIO(answer)).argmax(1)
    local = predict_fn(to_batch(x), model_fn(trained_model_dir))
    assert (served == local.argmax(1)).all()  # the same predictions as the model in-process
    assert (served == y).mean() >= 0.98


def test_an_answer_longer_than_the_servers_default_limit(server, images):
    """60,000 images in a small compressed npz: JSON for them is over the 6.5 MB that the
    model server allows by default, and it killed the worker that tried to send it."""
    x, _ = images
    tiled = np.tile(x[:10], (6000, 1, 1))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=tiled)
    assert len(buffer.getvalue()) < PAYLOAD_LIMIT_MB * 2**20
    status, _, answer = server.invoke(buffer.getvalue(), NPZ, accept=JSON)
    assert status == 200, answer[:300]
    assert len(answer) > 6_553_500
    labels = labels_of(answer)
    _, _, first = server.invoke(npy(x[:10]), NPY)
    assert labels == labels_of(first) * 6000
    assert "Worker died" not in server.output()


@pytest.mark.parametrize(
    "fmt,content_type",
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("PNG", "application/x-image")],
)
def test_hand_drawn_digits_are_read_right(server, fmt, content_type):
    wrong = []
    for digit in range(10):
        for variant in VARIANTS:
            image = draw_digit(digit, mode="RGB" if fmt == "JPEG" else "L", **variant)
            status, _, body = server.invoke(encode(image, fmt), content_type)
            assert status == 200, body
            if labels_of(body) != [digit]:
                wrong.append((digit, variant, labels_of(body)))
    assert not wrong


def error_of(answer):
    status, headers, body = answer
    assert headers["content-type"].startswith(JSON)
    return status, json.loads(body)


@pytest.mark.parametrize(
    "body,content_type,accept,status,words",
    [
        (b"", JSON, None, 400, "empty body"),
        (b"[[1, 2], [3]", JSON, None, 400, "not valid JSON"),
        (b"[[1, 2], [3]]", JSON, None, 400, "not an array of real numbers"),
        (json.dumps([[0.5] * 27] * 28).encode(), JSON, None, 400, "has shape (28, 27)"),
        (b"[" * 100000 + b"]" * 100000, JSON, None, 400, "not valid JSON"),
        (npy(np.full((28, 28), np.nan)), NPY, None, 400, "NaN or infinity"),
        (json.dumps([[float("inf")] * 28] * 28).encode(), JSON, None, 400, "NaN or infinity"),
        (npy(np.full((2, 784), 300.0)), NPY, None, 400, "pixels must lie in 0-1 or 0-255"),
        (npy(np.array(["a", "b"])), NPY, None, 400, "not an array of real numbers"),
        (npy(np.ones((28, 28), np.complex64)), NPY, None, 400, "not an array of real numbers"),
        (b"\x93NUMPY garbage", NPY, None, 400, "not a readable .npy"),
        (npz_bomb(), NPZ, None, 413, "expands to 282067073 bytes"),
        (b"1,2,3\n", CSV, None, 400, "each row must be one image of 784 values"),
        (b"\x89PNG\r\n\x1a\n truncated", "image/png", None, 400, "not a readable PNG or JPEG"),
        (encode(draw_digit(1).point(lambda _: 235), "PNG"), "image/png", None, 400, "no digit"),
        (b"hello", "text/plain", None, 415, "text/plain is not supported"),
        (b"[0]", None, None, 415, "is not supported"),
        (npy(np.zeros((28, 28))), NPY, "image/png", 406, "names no supported response type"),
    ],
)
def test_bad_requests_get_a_4xx_that_names_the_problem(
    server, body, content_type, accept, status, words
):
    answer_status, answer = error_of(server.invoke(body, content_type, accept))
    assert answer_status == status and answer["status"] == status
    assert words in answer["error"], answer
    assert "Traceback" not in json.dumps(answer)


def test_body_above_the_payload_limit_is_413(server):
    body = npy(np.zeros((int(PAYLOAD_LIMIT_MB * 1.5 * 2**20) // 8,)))
    status, answer = error_of(server.invoke(body, NPY))
    assert status == 413 and f"above the {PAYLOAD_LIMIT_MB} MB limit" in answer["error"]


def test_workers_survive_bad_requests(server, images):
    x, y = images
    for _ in range(20):
        server.invoke(b"\x00\xff" * 100, NPY)
        server.invoke(b"{", JSON)
    status, _, body = server.invoke(npy(x[:8]), NPY)
    assert status == 200 and labels_of(body) == list(y[:8])
    assert server.ping()[0] == 200


def test_a_model_that_cannot_load_stops_the_server_with_the_reason(tmp_path):
    """Stock MMS answers /ping 200 here while every worker fails to load."""
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "model.pth").write_bytes(b"not a checkpoint")
    srv = LocalServer.serve(str(broken), tmp_path)
    try:
        assert srv.wait_exit() not in (None, 0), srv.output()
        assert "cannot serve the model in" in srv.output(), srv.output()
        assert "model.pth is not a weights-only PyTorch checkpoint" in srv.output(), srv.output()
        assert 200 not in [status for _, status in srv.pings]
    finally:
        srv.close()


def test_ping_turns_healthy_after_the_model_loads(tmp_path, trained_model_dir):
    srv = LocalServer.serve(trained_model_dir, tmp_path)
    try:
        seconds = srv.wait_healthy()
        statuses = [s for _, s in srv.pings]
        assert statuses[-1] == 200 and set(statuses) <= {200, 503}
        assert all(s == 200 for s in statuses[statuses.index(200) :])
        print(f"start to healthy /ping: {seconds:.1f} s; pings {srv.pings[:3]}...")
        assert srv.processes(), "the test cannot see the server's processes"
    finally:
        srv.close()
    assert not srv.processes(), "stopping serve left processes running"


def wait_for_exit(srv, timeout=60):
    try:
        return srv.process.wait(timeout=timeout)
    finally:
        srv.close()


def test_a_port_in_use_is_refused_at_once(tmp_path, trained_model_dir):
    """The stock server logs a Java exception here, exits 0 and leaves its workers running."""
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", port))
        holder.listen()
        srv = LocalServer.serve(trained_model_dir, tmp_path, SAGEMAKER_BIND_TO_PORT=str(port))
        assert wait_for_exit(srv) != 0
    assert f"cannot serve on port {port}: 0.0.0.0:{port} is in use" in srv.output()
    assert "SAGEMAKER_BIND_TO_PORT" in srv.output()
    assert not srv.processes()


def test_a_model_server_that_dies_ends_serve_with_nothing_left_running(tmp_path, trained_model_dir):
    """The JVM killed (the kernel's OOM killer, say): serve fails and ends the workers, which
    would otherwise go on holding the model's memory."""
    srv = LocalServer.serve(trained_model_dir, tmp_path)
    srv.wait_healthy()
    jvm = [pid for pid, argv in srv.processes().items() if os.path.basename(argv[0]) == "java"]
    assert len(jvm) == 1, srv.processes()
    os.kill(jvm[0], signal.SIGKILL)
    assert wait_for_exit(srv) != 0
    assert "multi-model-server stopped by itself" in srv.output(), srv.output()
    assert not srv.processes(), srv.processes()


def test_a_model_folder_without_a_model_is_refused_at_once(tmp_path):
    empty = tmp_path / "empty_model"
    empty.mkdir()
    srv = LocalServer.serve(str(empty), tmp_path)
    try:
        assert srv.process.wait(timeout=60) != 0
        assert "holds neither model.pth nor model.pt" in srv.output()
    finally:
        srv.close()


def test_workers_fork_from_one_loaded_model_and_log_only_to_stdout(
    tmp_path, trained_model_dir, images
):
    """Two workers, one load (preload_model); no per-request lines and no log files unless
    SAGEMAKER_ACCESS_LOG=true turns the access log and the prediction-time metric on."""
    x, y = images
    for access_log in ("false", "true"):
        run_dir = tmp_path / access_log
        run_dir.mkdir()
        srv = LocalServer.serve(
            trained_model_dir,
            run_dir,
            SAGEMAKER_MODEL_SERVER_WORKERS="2",
            SAGEMAKER_ACCESS_LOG=access_log,
        )
        try:
            srv.wait_healthy()
            for _ in range(4):
                status, _, body = srv.invoke(npy(x[:4]), NPY)
                assert status == 200 and labels_of(body) == list(y[:4])
            srv.wait_healthy(workers=2)
            output = srv.output()
            assert output.count("model loaded on cpu") == 1, output
            assert ('"POST /invocations HTTP/1.1" 200' in output) == (access_log == "true")
            assert ("PredictionTime" in output) == (access_log == "true")
            written = [p for p in run_dir.rglob("*.log") if str(p) != srv.log_path]
            assert not written, written
        finally:
            srv.close()
