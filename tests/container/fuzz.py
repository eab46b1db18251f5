"""Hypothesis strategies for malformed /invocations requests, across every media type: each
one drawn here must be answered with a 4xx that names the problem."""

import functools
import io
import json
import struct
import zipfile
import zlib

import numpy as np
from hypothesis import strategies as st
from PIL import Image

MEDIA_TYPES = [
    "application/json",
    "application/jsonlines",
    "text/csv",
    "application/x-npy",
    "application/x-npz",
    "image/png",
    "image/jpeg",
    "application/x-image",
]
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
content_types = st.one_of(
    st.sampled_from(MEDIA_TYPES),
    st.sampled_from(
        [
            "",
            "text/plain",
            "application/octet-stream",
            "image/gif",
            "text/html",
            "multipart/form-data",
            "application/json; charset=utf-16",
            "application/x-npy; x=1",
        ]
    ),
    header_text,
)
# Mostly an Accept the server serves, so that the body itself is what gets judged.
accepts = st.one_of(
    st.none(),
    st.none(),
    st.sampled_from(
        ["application/json", "*/*", "text/csv", "application/x-npy", "application/jsonlines"]
    ),
    header_text,
)


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def encoded_digit(fmt):
    image = Image.new("L", (60, 80), 230)
    image.paste(20, (25, 10, 35, 70))  # a "1"
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


PNG, JPEG = encoded_digit("PNG"), encoded_digit("JPEG")
GOOD_NPY = npy(np.zeros((2, 28, 28), np.uint8))


def png_claiming(width, height):
    """A PNG whose header declares width × height pixels, with almost no data behind it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = zlib.compress(b"\x00" * 16)
    idat = b"IDAT" + data
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(data))
        + idat
        + struct.pack(">I", zlib.crc32(idat))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


def npy_claiming(shape):
    """An npy header that declares ``shape`` float32, with 16 bytes of data."""
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (118 - len(header)) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 16


@st.composite
def truncated(draw):
    """A valid npy, PNG or JPEG cut short."""
    body, media = draw(
        st.sampled_from(
            [
                (GOOD_NPY, "application/x-npy"),
                (PNG, "image/png"),
                (JPEG, "image/jpeg"),
                (PNG, "application/x-image"),
            ]
        )
    )
    return media, body[: draw(st.integers(1, len(body) - 1))]


def allowed(shape):
    """The shapes the server takes: (28,28), (784,), (N,784), (N,28,28), (N,1,28,28)."""
    return shape in ((28, 28), (784,)) or (
        len(shape) >= 2 and shape[0] >= 1 and shape[1:] in ((784,), (28, 28), (1, 28, 28))
    )


@st.composite
def wrong_shape(draw):
    shape = tuple(draw(st.lists(st.integers(0, 40), max_size=5)))
    if allowed(shape):
        shape += (3,)
    size = int(np.prod(shape))
    array = np.zeros(shape, np.float32) if size <= 40_000 else np.zeros((3, 3), np.float32)
    kind = draw(st.sampled_from(["npy", "json", "csv"]))
    if kind == "npy":
        return "application/x-npy", npy(array)
    if kind == "json":
        return "application/json", json.dumps(array.tolist()).encode()
    rows = (
        array.reshape(1, -1) if array.ndim < 2 or array.size == 0 else array.reshape(len(array), -1)
    )
    rows = rows[:, :783]  # never 784 values a row
    return "text/csv", "\n".join(",".join("0" for _ in row) for row in rows).encode() or b","


@st.composite
def wrong_dtype(draw):
    """A well-shaped array of a type that holds no pixels."""
    dtype = draw(st.sampled_from(["complex64", "U3", "S3", "datetime64[s]", "object", "V4"]))
    array = np.zeros((28, 28), dtype=dtype)
    if dtype == "object":
        array[0, 0] = {"not": "a pixel"}  # needs pickle, which the server never loads
    if draw(st.booleans()):
        return "application/x-npy", npy(array)
    buffer = io.BytesIO()
    np.savez(buffer, instances=array)
    return "application/x-npz", buffer.getvalue()


@st.composite
def not_finite(draw):
    bad = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
    array = np.zeros((28, 28), np.float32)
    array[draw(st.integers(0, 27)), draw(st.integers(0, 27))] = bad
    kind = draw(st.sampled_from(["npy", "json", "csv", "jsonl"]))
    if kind == "npy":
        return "application/x-npy", npy(array)
    if kind == "json":
        return "application/json", json.dumps(array.tolist()).encode()  # NaN, Infinity
    if kind == "jsonl":
        return "application/jsonlines", json.dumps(array.reshape(-1).tolist()).encode()
    return "text/csv", ",".join(str(v) for v in array.reshape(-1)).encode()


@st.composite
def out_of_range(draw):
    array = np.zeros((28, 28))
    array[3, 4] = draw(st.sampled_from([-1.0, 255.5, 256.0, 1e6, -1e9]))
    return draw(st.sampled_from(["application/json", "application/jsonlines"])), json.dumps(
        array.tolist()
    ).encode()


@functools.cache
def npz_bomb():
    """A small .npz whose one array expands to 282 MB of zeros."""
    shape = (90_000, 784)
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (118 - len(header)) + "\n"
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("instances.npy", "w", force_zip64=True) as member,
    ):
        member.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        chunk = b"\0" * 2**20
        for _ in range(shape[0] * shape[1] * 4 // len(chunk)):
            member.write(chunk)
    return buffer.getvalue()


@st.composite
def huge_dimensions(draw):
    if draw(st.integers(0, 9)) == 0:
        return "application/x-npz", npz_bomb()
    if draw(st.booleans()):
        side = draw(st.integers(20_000, 2_000_000))
        return draw(st.sampled_from(["image/png", "application/x-image"])), png_claiming(side, side)
    shape = draw(st.sampled_from([(10**9, 784), (2**31, 28, 28), (10**6, 10**6), (10**12,)]))
    return "application/x-npy", npy_claiming(shape)


@st.composite
def deep_json(draw):
    depth = draw(st.integers(100, 200_000))
    return draw(
        st.sampled_from(["application/json", "application/jsonlines"])
    ), b"[" * depth + b"]" * depth


@st.composite
def random_bytes(draw):
    return draw(st.sampled_from(MEDIA_TYPES)), draw(st.binary(min_size=1, max_size=2000))


@st.composite
def wrong_content_type(draw):
    """A good body under a type that is not served, or none at all."""
    media = draw(st.sampled_from(["", "text/plain", "image/gif", "application/xml"]))
    return media, draw(st.sampled_from([PNG, GOOD_NPY, b"[[0]]"]))


@functools.lru_cache(maxsize=1)
def valid_bodies():
    """One valid body of every accepted type, two images each (one for the pictures)."""
    x = (np.random.default_rng(0).random((2, 28, 28)) * 255).astype(np.uint8)
    npz, png, jpeg = io.BytesIO(), io.BytesIO(), io.BytesIO()
    np.savez(npz, instances=x)
    Image.fromarray(255 - x[0]).save(png, format="PNG")
    Image.fromarray(255 - x[0]).save(jpeg, format="JPEG")
    return {
        "application/json": json.dumps(x.tolist()).encode(),
        "application/jsonlines": b"\n".join(json.dumps(i.tolist()).encode() for i in x),
        "text/csv": "\n".join(",".join(map(str, i.reshape(-1))) for i in x).encode(),
        "application/x-npy": npy(x),
        "application/x-npz": npz.getvalue(),
        "image/png": png.getvalue(),
        "image/jpeg": jpeg.getvalue(),
    }


# (body's type, type it is sent as) pairs that read alike: no refusal is owed.
READ_ALIKE = {
    ("application/json", "application/jsonlines"),  # one line holding a batch
    ("image/png", "image/jpeg"),
    ("image/jpeg", "image/png"),
    ("image/png", "application/x-image"),
    ("image/jpeg", "application/x-image"),
}


@st.composite
def under_another_type(draw):
    """A valid body of one type sent as another type that cannot read it."""
    valid = valid_bodies()
    body_type = draw(st.sampled_from(sorted(valid)))
    media = draw(
        st.sampled_from(
            [m for m in MEDIA_TYPES if m != body_type and (body_type, m) not in READ_ALIKE]
        )
    )
    return media, valid[body_type]


class Body(bytes):
    """Request bytes that print short: failing examples can be megabytes long."""

    def __repr__(self):
        return f"<{len(self)} bytes: {bytes(self[:80])!r}...>"


def bodies(payload_limit_bytes):
    """(Content-Type, body) pairs, each of which deserves a 4xx."""
    empty = st.tuples(st.sampled_from(MEDIA_TYPES), st.just(b""))
    oversize = st.tuples(
        st.sampled_from(MEDIA_TYPES),
        st.integers(1, 3).map(lambda k: b"0" * (payload_limit_bytes * (k + 1) // 2 + 1024)),
    )
    return st.one_of(
        random_bytes(),
        truncated(),
        wrong_shape(),
        wrong_dtype(),
        not_finite(),
        out_of_range(),
        huge_dimensions(),
        deep_json(),
        empty,
        oversize,
        wrong_content_type(),
        under_another_type(),
    )


@st.composite
def bad_requests(draw, payload_limit_bytes):
    """(headers, body) of one malformed request, with an Accept or none."""
    media, body = draw(bodies(payload_limit_bytes))
    body = Body(body)
    headers = {"Content-Type": media} if media or draw(st.booleans()) else {}
    accept = draw(accepts)
    if accept is not None:
        headers["Accept"] = accept
    return headers, body
