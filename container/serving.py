"""The inference hooks: model_fn, input_fn, predict_fn, output_fn, over explicit media types.

Pixel scale, one rule for every input type: an image whose largest value is above 1 is on the
0-255 scale, otherwise on the 0-1 scale; values must lie in [0, 255]. PNG and JPEG are decoded
to 0-255. Every image becomes 28x28 floats in 0-1, white ink on black, as in MNIST.
"""
import io
import json
import logging
import os
import struct
import warnings
import zipfile

import numpy as np
import onnxruntime
import orjson
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from sagemaker_inference.errors import BaseInferenceToolkitError

from container import settings
from model.networks import IMAGE_SIZE, NetConfig, build_model

PIXELS = IMAGE_SIZE * IMAGE_SIZE
SHAPES = "(28, 28), (784,), (N, 28, 28), (N, 784) or (N, 1, 28, 28)"
MAX_IMAGE_PIXELS = 40_000_000  # a 40-megapixel photo is the largest image decoded

logger = logging.getLogger(__name__)


class RequestError(BaseInferenceToolkitError):
    """A request the server cannot answer; the status and message go back to the caller."""

    def __init__(self, status, message, **details):
        self.details = details
        super().__init__(status, message, message)

    def body(self):
        return json.dumps({"error": self.message, "status": self.status_code, **self.details})


def bad_request(message):
    return RequestError(400, message, accepted_content_types=list(DECODERS),
                        expected_shapes=SHAPES)


# ---------------------------------------------------------------- model_fn

class OnnxModel:
    """The network on the CPU through ONNX Runtime, the faster engine there for every batch size
    (one image in half of torch's time, 1,000 in about three quarters; see the README).

    A session is made for each thread count a request runs on (the threads torch is set to,
    which the handler's share of the cores decides), in the process that runs it: the server
    forks its workers from the process that loaded the model, and a session's threads do not
    survive a fork. A forked process keeps the sessions it inherited, unused: freeing one
    whose threads stayed behind in the parent hangs. Idle sessions do not spin their threads,
    which would take the cores from the other workers."""

    # A larger batch takes the cores no other worker is using: a second thread made a pass of 32
    # images 1.4x as fast here, of 16 1.2x, of 4 no faster.
    SMALL_BATCH = 16

    def __init__(self, onnx):
        self.onnx, self.device = onnx, torch.device("cpu")
        self._sessions, self._pid, self._inherited = {}, os.getpid(), []

    def session(self, threads):
        if self._pid != os.getpid():
            self._inherited.append(self._sessions)
            self._sessions, self._pid = {}, os.getpid()
        if threads not in self._sessions:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._sessions[threads] = onnxruntime.InferenceSession(
                self.onnx, options, providers=["CPUExecutionProvider"])
        return self._sessions[threads]

    def __call__(self, x):
        logits, = self.session(torch.get_num_threads()).run(None, {"pixels": x.numpy()})
        return torch.from_numpy(logits)


def to_onnx(net):
    """``net`` (a module or TorchScript) as ONNX, any number of images to their logits. Through
    torch's TorchScript-based exporter: 0.07 s here, where the torch.export-based one took 5 s,
    which would be most of the server's start-up."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # that exporter is deprecated, and says so
        torch.onnx.export(net, (torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE),), buffer,
                          input_names=["pixels"], output_names=["logits"],
                          dynamic_axes={"pixels": {0: "images"}, "logits": {0: "images"}},
                          dynamo=False)
    return buffer.getvalue()


PROBE_IMAGES = 8


def onnx_model(net):
    """``net`` on ONNX Runtime, or None (with a warning in the log) where it cannot be exported
    or its logits on random pixels differ from torch's by more than 1e-4."""
    try:
        model = OnnxModel(to_onnx(net))
        probe = torch.rand(PROBE_IMAGES, 1, IMAGE_SIZE, IMAGE_SIZE,
                           generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            difference = float((model(probe) - net(probe)).abs().max())
        if not difference <= 1e-4:  # NaN too
            raise ValueError(f"its logits differ from torch's by {difference:g}")
    except Exception as e:  # noqa: BLE001 - the exporter and the runtime raise many kinds
        logger.warning("the model runs on torch: ONNX Runtime cannot run it (%s)", describe(e))
        return None
    return model


class Model:
    """The network on torch: on a GPU, and on the CPU where ONNX Runtime cannot run it. On the
    CPU there are two TorchScript graphs of it: one frozen as it is, the faster for a few
    images, and one through optimize_for_inference (oneDNN kernels throughout, batch norm
    folded where it can be), the faster for batches.

    The frozen graph runs up to three images with torch's oneDNN convolutions switched off:
    torch would give a 5x5 convolution to oneDNN even for one image, and its own im2col and
    GEMM are faster there (on one thread, caches evicted before each pass: one image 291-321
    against 352-369 us, three 503 against 563; from four images on, oneDNN is as fast or
    faster). The switch is torch's global flag, set for the call and then restored: the batch
    graph calls oneDNN directly, whatever the flag says."""

    SMALL_BATCH = 32  # the crossover measured on one thread
    FEW = 3  # at most this many images: the frozen graph without oneDNN, on the CPU

    def __init__(self, net, device, batch_net=None):
        self.net, self.device = net, device
        self.batch_net = batch_net if batch_net is not None else net

    def __call__(self, x):
        if len(x) > self.SMALL_BATCH:
            return self.batch_net(x)
        if len(x) > self.FEW or self.device.type != "cpu":
            return self.net(x)
        onednn = torch.backends.mkldnn
        was = onednn.enabled
        onednn.enabled = False
        try:
            return self.net(x)
        finally:
            onednn.enabled = was


def torch_model(net, device):
    """``net`` (in eval mode, on ``device``) as a Model."""
    if device.type != "cpu":
        return Model(net, device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        # Channels-last weights: about 1.7x the speed of the frozen graph for one image.
        net = net.to(memory_format=torch.channels_last)
        scripted = net if isinstance(net, torch.jit.ScriptModule) else torch.jit.script(net)
        # For a batch of 1,000 on one thread the optimized graph is about 3x the eager net.
        return Model(torch.jit.freeze(scripted), device,
                     torch.jit.optimize_for_inference(scripted))


def load_net(model_dir):
    """The net that training wrote into ``model_dir``, in eval mode on the CPU: the state dict
    rebuilt from its saved config (no code needed), else the TorchScript file."""
    state_path = os.path.join(model_dir, settings.STATE_DICT_FILE)
    script_path = os.path.join(model_dir, settings.TORCHSCRIPT_FILE)
    if os.path.exists(state_path):
        try:
            saved = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many kinds here
            raise ValueError(f"{state_path} is not a weights-only PyTorch checkpoint "
                             f"({type(e).__name__})") from None
        net = build_model(NetConfig(**saved["config"]))
        net.load_state_dict(saved["state_dict"])
        if hasattr(net, "for_inference"):
            net = net.for_inference()
    elif os.path.exists(script_path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            net = torch.jit.load(script_path, map_location="cpu")
    else:
        found = sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []
        raise FileNotFoundError(f"{model_dir} holds neither {settings.STATE_DICT_FILE} nor "
                                f"{settings.TORCHSCRIPT_FILE} (found: "
                                f"{', '.join(found) or 'nothing'})")
    return net.eval()


def model_fn(model_dir, device=None):
    """The net that training wrote into ``model_dir``, ready to predict: on the CPU through ONNX
    Runtime where it can, else on torch."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net = load_net(model_dir)
    model = onnx_model(net) if device.type == "cpu" else None
    if model is None:
        model = torch_model(net.to(device), device)
    # Must run. On torch, twice through each graph, so that TorchScript has profiled and
    # optimized both before the first request.
    for size in (1, 1, model.SMALL_BATCH + 1, model.SMALL_BATCH + 1):
        predict_fn(np.zeros((size, 1, IMAGE_SIZE, IMAGE_SIZE), np.float32), model)
    return model


def describe(error):
    """An exception in one line: its type and the first line of its message."""
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"


# ---------------------------------------------------------------- input_fn

def _media_type(header):
    return (header or "").split(";")[0].strip().lower()


def to_batch(array, name="input"):
    """Any accepted shape of pixels to float32 (N, 1, 28, 28) in 0-1, per the scale rule."""
    try:
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":  # not complex, text, dates, records or objects
            raise TypeError
        integer = array.dtype.kind != "f"  # integers and booleans: converted once, at the end
        pixels = array if integer else array.astype(np.float32, copy=False)
        copied, array = pixels is not array, pixels
    except (ValueError, TypeError, OverflowError):
        raise bad_request(f"{name} is not an array of real numbers (ragged lists, text, "
                          f"complex numbers?)") from None
    shape = array.shape
    if shape in ((IMAGE_SIZE, IMAGE_SIZE), (PIXELS,)):
        array = array.reshape(1, -1)
    if array.ndim == 2 and array.shape[1] == PIXELS:
        array = array.reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
    elif array.ndim == 3 and array.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
        array = array[:, None]
    if array.ndim != 4 or array.shape[1:] != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise bad_request(f"{name} has shape {shape}; expected {SHAPES}")
    if array.shape[0] == 0:
        raise bad_request(f"{name} holds no images")
    peak = array.reshape(len(array), -1).max(axis=1)
    low = 0 if array.dtype.kind in "bu" else array.min()
    high = peak.max()  # NaN spreads to low and high, and infinity is an extreme
    if not (np.isfinite(low) and np.isfinite(high)):
        raise bad_request(f"{name} holds NaN or infinity")
    if low < 0 or high > 255:
        raise bad_request(f"{name} has pixel values from {array.min():g} to {high:g}; pixels "
                          f"must lie in 0-1 or 0-255")
    on_255 = peak > 1
    if not on_255.any():  # all on the 0-1 scale: float32 goes on as it came, not copied
        return array.astype(np.float32) if integer else array
    # A scalar where every image is on 0-255, the usual case: a third faster than one a row.
    divisor = (np.float32(255) if on_255.all()
               else np.where(on_255, 255.0, 1.0).astype(np.float32)[:, None, None, None])
    if integer:  # uint8 pixels, the usual case: converted and scaled in one pass
        return np.divide(array, divisor, dtype=np.float32)
    if copied:  # scaled in place: the copy is this function's own
        return np.divide(array, divisor, out=array)
    return array / divisor  # the caller's array stays as it was


def _decode_json_value(text, name):
    try:
        return orjson.loads(text)  # nesting deeper than 1,024 is an error, not a recursion
    except orjson.JSONDecodeError as e:
        try:  # the standard library also reads NaN and Infinity, which to_batch then names
            return json.loads(text)
        except (ValueError, RecursionError):
            raise bad_request(f"{name} is not valid JSON ({str(e)[:120]})") from None


def decode_json(body):
    data = _decode_json_value(body, "body")
    if isinstance(data, dict):
        if "instances" not in data:
            raise bad_request(f"JSON object without 'instances' (keys: {', '.join(data)[:200]})")
        data = data["instances"]
    if isinstance(data, list) and data and isinstance(data[0], dict):
        raise bad_request("JSON instances must be images (lists of numbers), not objects")
    return to_batch(data, "JSON body")


ONE_IMAGE = ((PIXELS,), (IMAGE_SIZE, IMAGE_SIZE), (1, IMAGE_SIZE, IMAGE_SIZE))


def decode_jsonlines(body):
    """Each line an image or a batch of them. Lines that each hold one image of the same shape,
    as batch transform sends them, are checked and scaled together, in about two thirds of the
    time that one line at a time took; anything else, or a problem found there, goes line by
    line, so that the message names the line."""
    lines = [line for line in body.splitlines() if line.strip()]
    if not lines:
        raise bad_request("empty JSON Lines body")
    names = [f"line {i + 1}" for i in range(len(lines))]
    arrays = [_json_array(line, name) for line, name in zip(lines, names)]
    if all(a.shape == arrays[0].shape and a.dtype.kind in "biuf" for a in arrays) \
            and arrays[0].shape in ONE_IMAGE:
        try:
            return to_batch(np.stack(arrays), "JSON Lines body")
        except RequestError:
            pass
    return np.concatenate([to_batch(a, name) for a, name in zip(arrays, names)])


def _json_array(text, name):
    value = _decode_json_value(text, name)
    try:
        return np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        return to_batch(value, name)  # which fails on the same np.asarray: a 400 naming the line


def decode_csv(body):
    """One image a row. numpy's parser reads the rows (1,000 images: 140 ms, where Python's
    float() per value took 265); a body it refuses is read again value by value, which accepts
    what float() accepts or names the value and row that are wrong."""
    rows = [row for row in body.splitlines() if row.strip()]
    if not rows:
        raise bad_request("CSV body holds no images")
    try:
        values = np.loadtxt(rows, delimiter=",", comments=None, ndmin=2)
    except ValueError:
        values = _read_csv_values(rows)
    if values.shape[1:] != (PIXELS,):
        widths = sorted({row.count(",") + 1 for row in rows})
        raise bad_request(f"CSV rows have {widths} values; each row must be one image of "
                          f"{PIXELS} values")
    return to_batch(values, "CSV body")


def _read_csv_values(rows):
    values = []
    for number, row in enumerate(rows, 1):
        try:
            values.append([float(v) for v in row.split(",")])
        except ValueError as e:
            raise bad_request(f"CSV holds a value that is not a number in row {number} "
                              f"({e})") from None
    if len({len(row) for row in values}) > 1:
        return np.empty((len(values), 0))  # ragged: the caller names the widths
    return np.array(values)


def _read_npy(body, name):
    """The array in the .npy bytes ``body``, its header checked before anything is allocated (no
    objects, and no more data declared than the body holds). The array is the body itself, not a
    copy of it: the server hands over a bytearray of its own, so the pixels are read where they
    lie (a read-only bytes body, or data that a header of an odd length leaves unaligned, is
    copied once)."""
    stream = io.BytesIO(memoryview(body)[:65536])  # numpy reads no header over 10,000 bytes
    version = np.lib.format.read_magic(stream)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran_order, dtype = read_header(stream)
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    count = int(np.prod(shape, dtype=object))
    declared, start = count * dtype.itemsize, stream.tell()
    if declared > len(body) - start:
        raise bad_request(f"{name} declares shape {shape} of {dtype} ({declared} bytes), but "
                          f"{len(body) - start} bytes follow its header")
    array = np.frombuffer(body, dtype, count, start).reshape(
        shape, order="F" if fortran_order else "C")
    if not (array.flags.writeable and array.flags.aligned):  # bytes, or an odd header
        array = array.copy()
    return array


def decode_npy(body):
    try:
        if body.startswith(b"PK"):
            raise bad_request("body is an .npz archive; send it as application/x-npz")
        if not body.startswith(b"\x93NUMPY"):
            raise ValueError("no .npy magic string at the start")
        array = _read_npy(body, "npy array")
    except (ValueError, OSError, EOFError) as e:
        raise bad_request(f"body is not a readable .npy array ({str(e)[:200]})") from None
    return to_batch(array, "npy array")


NPZ_KEYS = ("instances", "x", "images", "x_test")


def decode_npz(body):
    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as archive:
            names = archive.files
            key = names[0] if len(names) == 1 else next((k for k in NPZ_KEYS if k in names), None)
            if key is None:
                raise bad_request(f"npz holds {names}; send one array, or name it one of "
                                  f"{', '.join(NPZ_KEYS)}")
            member = key if key.endswith(".npy") else key + ".npy"
            size = archive.zip.getinfo(member).file_size
            if size > settings.MAX_NPZ_ARRAY_BYTES:
                raise RequestError(413, f"npz array '{key}' expands to {size} bytes, above "
                                        f"{settings.MAX_NPZ_ARRAY_BYTES}")
            with archive.zip.open(member) as stream:
                array = _read_npy(stream.read(), f"npz array '{key}'")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise bad_request(f"body is not a readable .npz archive ({str(e)[:200]})") from None
    return to_batch(array, f"npz array '{key}'")


PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every PNG, with its checksum


def decode_image(body):
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(body))
            image.load()
            # A file cut short after its pixels still decodes: refuse it as the truncation it is.
            if image.format == "PNG":
                Image.open(io.BytesIO(body)).verify()  # every chunk's checksum, up to IEND
                if PNG_END not in body:
                    raise ValueError("truncated PNG: no complete IEND chunk")
            elif image.format == "JPEG" and b"\xff\xd9" not in body[2:]:
                raise ValueError("truncated JPEG: no end-of-image marker")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RequestError(413, f"image is larger than {MAX_IMAGE_PIXELS} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error) as e:
        raise bad_request(f"body is not a readable PNG or JPEG image ({str(e)[:200]})") from None
    return mnist_style(image)[None, None]


def mnist_style(image):
    """One photo or drawing of a digit to 28x28 floats in 0-1, made the way MNIST was: gray,
    white ink on black, cropped to the ink, fitted into 20x20, centred by centre of mass."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)  # transparent parts are paper
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper: invert
        gray = 255.0 - gray
    background = np.median(gray)
    span = gray.max() - background
    if span < 32:
        raise bad_request("image shows no digit: too little contrast between ink and paper")
    ink = np.clip((gray - background) / span, 0.0, 1.0)
    ink[ink < 0.2] = 0.0  # paper texture and shading
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    height, width = ink.shape
    scale = 20.0 / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    box = np.asarray(Image.fromarray(ink, mode="F").resize(size, Image.Resampling.LANCZOS))
    box = np.clip(box, 0.0, None)
    total = box.sum()
    cy = (box.sum(axis=1) * np.arange(box.shape[0])).sum() / total
    cx = (box.sum(axis=0) * np.arange(box.shape[1])).sum() / total
    top = int(np.clip(round(IMAGE_SIZE / 2 - 0.5 - cy), 0, IMAGE_SIZE - box.shape[0]))
    left = int(np.clip(round(IMAGE_SIZE / 2 - 0.5 - cx), 0, IMAGE_SIZE - box.shape[1]))
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    canvas[top:top + box.shape[0], left:left + box.shape[1]] = box
    return canvas / canvas.max()


DECODERS = {
    settings.JSON: decode_json,
    settings.JSONLINES: decode_jsonlines,
    settings.CSV: decode_csv,
    settings.NPY: decode_npy,
    settings.NPZ: decode_npz,
    settings.PNG: decode_image,
    settings.JPEG: decode_image,
    settings.X_IMAGE: decode_image,
}
TEXT_TYPES = {settings.JSON, settings.JSONLINES, settings.CSV}


def input_fn(body, content_type):
    """Request bytes of ``content_type`` to float32 (N, 1, 28, 28) pixels in 0-1."""
    media_type = _media_type(content_type)
    if media_type not in DECODERS:
        raise RequestError(415, f"Content-Type {content_type or '(none)'} is not supported",
                           accepted_content_types=list(DECODERS))
    if not body:
        raise bad_request("empty body")
    if media_type in TEXT_TYPES:
        try:
            body = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        except UnicodeDecodeError:
            raise bad_request(f"{media_type} body is not UTF-8 text") from None
    return DECODERS[media_type](body)


# ---------------------------------------------------------------- predict_fn

# The most images in one pass through the net. Its activations take about 37 KB an image, so
# the largest requests (100,000 images and more) would otherwise need gigabytes at once. The
# largest of them, the second convolution's output, takes 25 KB an image, and 1,024 images keep
# it under 32 MB: glibc's malloc serves anything larger with fresh pages from the kernel each
# time, which the pass then faults in and zeroes (2,000 images in one pass: 12,400 page faults,
# and 42 of its 118 ms in the kernel). 4,000 images took 170 ms in passes of 1,024 and 261 ms
# in passes of 4,096, on two threads.
MAX_PASS = 1024


def predict_fn(batch, model):
    """Probabilities (N, 10): the whole batch in one pass through the net, or in passes of
    MAX_PASS images when it is larger."""
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(batch))
        passes = [torch.softmax(model(part.to(model.device)).float(), dim=1).cpu()
                  for part in x.split(MAX_PASS)]
        return (passes[0] if len(passes) == 1 else torch.cat(passes)).numpy()


# ---------------------------------------------------------------- output_fn

def _records(probabilities):
    labels = probabilities.argmax(axis=1).tolist()
    rows = np.round(probabilities.astype(np.float64), 6).tolist()
    return [{"label": label, "probabilities": row, "confidence": row[label]}
            for label, row in zip(labels, rows)]


def encode_json(probabilities):
    return orjson.dumps({"predictions": _records(probabilities)})


def encode_jsonlines(probabilities):
    return b"".join(orjson.dumps(r) + b"\n" for r in _records(probabilities))


def encode_csv(probabilities):
    """label,confidence,p0..p9 per image."""
    labels = probabilities.argmax(axis=1)
    return "".join(f"{label},{row[label]:.6f}," + ",".join(f"{p:.6f}" for p in row) + "\n"
                   for label, row in zip(labels, probabilities))


def encode_npy(probabilities):
    buffer = io.BytesIO()
    np.save(buffer, probabilities.astype(np.float32), allow_pickle=False)
    return buffer.getvalue()


ENCODERS = {
    settings.JSON: encode_json,
    settings.JSONLINES: encode_jsonlines,
    settings.CSV: encode_csv,
    settings.NPY: encode_npy,
}


def choose_accept(accept):
    """The first supported media type in an Accept header; JSON for none or */*."""
    if not accept or not accept.strip():
        return settings.JSON
    for part in accept.split(","):
        media_type = _media_type(part)
        if media_type in (settings.ANY, "application/*"):
            return settings.JSON
        if media_type in ENCODERS:
            return media_type
    raise RequestError(406, f"Accept {accept} names no supported response type",
                       accepted_response_types=list(ENCODERS))


def output_fn(probabilities, accept):
    """(body, content type) of the predictions in the media type ``accept`` asks for."""
    media_type = choose_accept(accept)
    return ENCODERS[media_type](probabilities), media_type
