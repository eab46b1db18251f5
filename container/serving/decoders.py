"""Request bodies to pixels: one decoder for each media type, and one entry point, ``decode``."""

import io
import json
import re
import zipfile

import numpy as np
import orjson

from container.serving import content_types as ct
from container.serving.errors import RequestError, bad_request, unsupported_media_type
from container.serving.images import mnist_style, open_image
from container.serving.parameters import MAX_NPZ_ARRAY_BYTES
from container.serving.pixels import ONE_IMAGE, PIXELS, to_batch

NPY_MAGIC = b"\x93NUMPY"
NPZ_KEYS = ("instances", "x", "images", "x_test")


def _json_value(text, name):
    try:
        return orjson.loads(text)  # nesting deeper than 1,024 is an error, not a recursion
    except orjson.JSONDecodeError as e:
        try:  # the standard library also reads NaN and Infinity, which to_batch then names
            return json.loads(text)
        except (ValueError, RecursionError):
            raise bad_request(f"{name} is not valid JSON ({str(e)[:120]})") from None


def decode_json(body):
    data = _json_value(body, "body")
    if isinstance(data, dict):
        if "instances" not in data:
            raise bad_request(f"JSON object without 'instances' (keys: {', '.join(data)[:200]})")
        data = data["instances"]
    if isinstance(data, list) and data and isinstance(data[0], dict):
        raise bad_request("JSON instances must be images (lists of numbers), not objects")
    return to_batch(data, "JSON body")


def decode_jsonlines(body):
    """Each line an image or a batch of them. Lines of one image each of one shape, as batch
    transform sends them, are checked and scaled together; anything else, or a problem found
    there, goes line by line, so that the message names the line."""
    lines = [line for line in body.splitlines() if line.strip()]
    if not lines:
        raise bad_request("empty JSON Lines body")
    names = [f"line {i + 1}" for i in range(len(lines))]
    arrays = [_json_array(line, name) for line, name in zip(lines, names, strict=True)]
    first = arrays[0]
    if first.shape in ONE_IMAGE and all(
        a.shape == first.shape and a.dtype.kind in "biuf" for a in arrays
    ):
        try:
            return to_batch(np.stack(arrays), "JSON Lines body")
        except RequestError:
            pass
    return np.concatenate([to_batch(a, name) for a, name in zip(arrays, names, strict=True)])


def _json_array(text, name):
    value = _json_value(text, name)
    try:
        return np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        return to_batch(value, name)  # which fails on the same np.asarray: a 400 naming the line


def decode_csv(body):
    """One image a row. A body numpy's parser refuses is read again value by value, which
    accepts what float() accepts or names the row and value that are wrong."""
    rows = [row for row in body.splitlines() if row.strip()]
    if not rows:
        raise bad_request("CSV body holds no images")
    try:
        values = np.loadtxt(rows, delimiter=",", comments=None, ndmin=2)
    except ValueError:
        values = _csv_values(rows)
    if values.shape[1:] != (PIXELS,):
        widths = sorted({row.count(",") + 1 for row in rows})
        raise bad_request(
            f"CSV rows have {widths} values; each row must be one image of {PIXELS} values"
        )
    return to_batch(values, "CSV body")


def _csv_values(rows):
    values = []
    for number, row in enumerate(rows, 1):
        try:
            values.append([float(v) for v in row.split(",")])
        except ValueError as e:
            raise bad_request(
                f"CSV holds a value that is not a number in row {number} ({e})"
            ) from None
    if len({len(row) for row in values}) > 1:
        return np.empty((len(values), 0))  # ragged: the caller names the widths
    return np.array(values)


def read_npy(body, name):
    """The array in the .npy bytes ``body``, its header checked before anything is allocated
    (no objects, no more data declared than the body holds). The array is read where it lies
    in the body, which the server hands over as a bytearray of its own; a read-only body, or
    pixels that an odd header leaves unaligned, are copied once."""
    stream = io.BytesIO(memoryview(body)[:65536])  # numpy reads no header over 10,000 bytes
    version = np.lib.format.read_magic(stream)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, fortran_order, dtype = read_header(stream)
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    count = int(np.prod(shape, dtype=object))
    declared, start = count * dtype.itemsize, stream.tell()
    if declared > len(body) - start:
        raise bad_request(
            f"{name} declares shape {shape} of {dtype} ({declared} bytes), but "
            f"{len(body) - start} bytes follow its header"
        )
    array = np.frombuffer(body, dtype, count, start).reshape(
        shape, order="F" if fortran_order else "C"
    )
    if not (array.flags.writeable and array.flags.aligned):
        array = array.copy()
    return array


def decode_npy(body):
    try:
        if body.startswith(b"PK"):
            raise bad_request("body is an .npz archive; send it as application/x-npz")
        if not body.startswith(NPY_MAGIC):
            raise ValueError("no .npy magic string at the start")
        array = read_npy(body, "npy array")
    except (ValueError, OSError, EOFError) as e:
        raise bad_request(f"body is not a readable .npy array ({str(e)[:200]})") from None
    return to_batch(array, "npy array")


def decode_npz(body):
    if body.startswith(NPY_MAGIC):  # np.load would hand back the array, not an archive
        raise bad_request("body is an .npy array; send it as application/x-npy")
    if not body.startswith(b"PK"):  # np.load would try it as a pickle, and say so
        raise bad_request("body is not a readable .npz archive (not a zip file)")
    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as archive:
            names = archive.files
            key = names[0] if len(names) == 1 else next((k for k in NPZ_KEYS if k in names), None)
            if key is None:
                raise bad_request(
                    f"npz holds {names}; send one array, or name it one of {', '.join(NPZ_KEYS)}"
                )
            member = key if key.endswith(".npy") else key + ".npy"
            size = archive.zip.getinfo(member).file_size
            if size > MAX_NPZ_ARRAY_BYTES:
                raise RequestError(
                    413, f"npz array '{key}' expands to {size} bytes, above {MAX_NPZ_ARRAY_BYTES}"
                )
            with archive.zip.open(member) as stream:
                array = read_npy(stream.read(), f"npz array '{key}'")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise bad_request(f"body is not a readable .npz archive ({str(e)[:200]})") from None
    return to_batch(array, f"npz array '{key}'")


def decode_image(body):
    return mnist_style(open_image(body))[None, None]


DECODERS = {
    ct.JSON: decode_json,
    ct.JSONLINES: decode_jsonlines,
    ct.CSV: decode_csv,
    ct.NPY: decode_npy,
    ct.NPZ: decode_npz,
    ct.PNG: decode_image,
    ct.JPEG: decode_image,
    ct.X_IMAGE: decode_image,
}


# Bytes that open each binary type.
MAGIC = {NPY_MAGIC: ct.NPY, b"PK\x03\x04": ct.NPZ, b"\x89PNG": ct.PNG, b"\xff\xd8\xff": ct.JPEG}
CSV_FIRST_LINE = re.compile(rb"\s*[-+0-9.eE]+(\s*,\s*[-+0-9.eE]+)+\s*")


def looks_like(body):
    """The type a body's first bytes show it to be, or None: the hint a 400 gives when a body
    of one type came under another."""
    head = bytes(body[:4096]) if isinstance(body, (bytes, bytearray, memoryview)) else b""
    for magic, media_type in MAGIC.items():
        if head.startswith(magic):
            return media_type
    text = head.lstrip()
    if text[:1] in (b"[", b"{"):
        lines = [line for line in text.splitlines() if line.strip()]
        multiple = len(lines) > 1 and all(line.lstrip()[:1] in (b"[", b"{") for line in lines)
        return ct.JSONLINES if multiple else ct.JSON
    first = text.split(b"\n", 1)[0]
    whole_line = len(first) < len(text) or len(head) < 4096
    return ct.CSV if whole_line and CSV_FIRST_LINE.fullmatch(first) else None


def decode(body, content_type):
    """Request bytes of ``content_type`` to float32 (N, 1, 28, 28) pixels in 0-1."""
    media_type = ct.media_type(content_type)
    if media_type not in DECODERS:
        raise unsupported_media_type(content_type)
    if not body:
        raise bad_request("empty body")
    try:
        text = body
        if media_type in ct.TEXT:
            try:
                text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
            except UnicodeDecodeError:
                raise bad_request(f"{media_type} body is not UTF-8 text") from None
        return DECODERS[media_type](text)
    except RequestError as e:
        kind = looks_like(body)
        if e.status_code == 400 and kind not in (None, media_type):
            hint = bad_request(
                f"the body looks like {kind}, not {media_type}: send it with Content-Type: {kind}"
            )
            hint.details["reason"] = e.message
            raise hint from None
        raise
