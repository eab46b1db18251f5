"""Each media type's decoder, in-process: what it reads and how it names what it cannot."""

import io
import json
import re

import numpy as np
import pytest

from container.serving.content_types import INPUTS
from container.serving.decoders import DECODERS, decode
from container.serving.errors import RequestError
from container.serving.pixels import to_batch
from tests.container.fuzz import READ_ALIKE, valid_bodies
from tests.digits import draw_digit, encode


def test_the_table_decodes_every_accepted_type():
    assert tuple(DECODERS) == INPUTS


@pytest.mark.parametrize("layout", ["C", "F", ">f4", "<f8", "uint8"])
def test_npy_is_read_as_np_load_reads_it(layout):
    pixels = np.random.default_rng(0).random((3, 28, 28))
    array = {
        "C": pixels.astype(np.float32),
        "F": np.asfortranarray(pixels.astype(np.float32)),
        ">f4": pixels.astype(">f4"),
        "<f8": pixels,
        "uint8": (pixels * 255).astype(np.uint8),
    }
    buffer = io.BytesIO()
    np.save(buffer, array[layout])
    for body in (buffer.getvalue(), bytearray(buffer.getvalue())):
        batch = decode(body, "application/x-npy")
        assert np.array_equal(batch, to_batch(np.load(io.BytesIO(body))))


def test_npy_with_a_header_that_leaves_the_pixels_unaligned():
    """Other writers need not pad the header to a multiple of 64 bytes as numpy does."""
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).random((2, 784), np.float32))
    body = buffer.getvalue()
    length = int.from_bytes(body[8:10], "little")
    header = body[10 : 10 + length].rstrip(b"\n") + b" \n"
    odd = body[:8] + len(header).to_bytes(2, "little") + header + body[10 + length :]
    batch = decode(bytearray(odd), "application/x-npy")
    assert batch.flags.aligned
    assert np.array_equal(batch, to_batch(np.load(io.BytesIO(odd))))


def test_npy_pixels_are_read_where_they_lie_in_the_body():
    """The server hands the handler a bytearray: float32 0-1 pixels are used in place."""
    buffer = io.BytesIO()
    np.save(buffer, np.full((2, 784), 0.5, np.float32))
    body = bytearray(buffer.getvalue())
    batch = decode(body, "application/x-npy")
    assert np.shares_memory(batch, np.frombuffer(body, np.uint8))


@pytest.mark.parametrize(
    "array, cut, message",
    [
        (np.array([{"a": 1}], dtype=object), 0, "Object arrays cannot be loaded"),
        (
            np.zeros((4, 784), np.float32),
            784 * 4,
            "(12544 bytes), but 9408 bytes follow its header",
        ),
        (
            np.zeros((4, 784), np.float32),
            10,
            "declares shape (4, 784) of float32 (12544 bytes), but 12534 bytes follow its header",
        ),
    ],
)
def test_npy_that_cannot_be_read(array, cut, message):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    body = buffer.getvalue()[: len(buffer.getvalue()) - cut]
    with pytest.raises(RequestError, match=re.escape(message)) as raised:
        decode(body, "application/x-npy")
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
    batch = decode(text.encode(), "text/csv")
    assert np.array_equal(batch, to_batch(np.array(by_value, np.float32)))


ONES = ",".join(["1"] * 784)


@pytest.mark.parametrize(
    "body, message",
    [
        (
            f"{ONES}\n{ONES}\nx,{ONES[2:]}",
            "not a number in row 3 (could not convert string to float: 'x')",
        ),
        (f"{ONES}\n{ONES[2:]}", "rows have [783, 784] values"),
        ("1,2,3", "rows have [3] values"),
        (" \n", "CSV body holds no images"),
    ],
)
def test_csv_that_cannot_be_read(body, message):
    with pytest.raises(RequestError, match=re.escape(message)) as raised:
        decode(body.encode(), "text/csv")
    assert raised.value.status_code == 400


def test_json_lines_of_one_image_each_give_what_line_by_line_gives():
    rng = np.random.default_rng(2)
    lines = [
        rng.integers(0, 256, 784).tolist(),
        (rng.random((28, 28)) * 255).tolist(),
        rng.random((28, 28)).tolist(),
        rng.integers(0, 2, (28, 28)).tolist(),
    ]
    for group in (lines[:1] * 3, lines[1:3], lines[1:], lines):  # the last: shapes differ
        body = "\n".join(json.dumps(line) for line in group).encode()
        by_line = np.concatenate([to_batch(line) for line in group])
        assert np.array_equal(decode(body, "application/jsonlines"), by_line)


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ([300] * 784, "line 3 has pixel values from 300 to 300"),
        ("[" + ",".join(["NaN"] * 784) + "]", "line 3 holds NaN or infinity"),
        ([1] * 783 + [None], "line 3 is not an array of real numbers"),
        ([1] * 28, "line 3 has shape (28,)"),
    ],
)
def test_json_lines_name_the_line_that_cannot_be_read(bad_line, message):
    lines = [json.dumps([1] * 784)] * 2 + [
        bad_line if isinstance(bad_line, str) else json.dumps(bad_line)
    ]
    with pytest.raises(RequestError, match=re.escape(message)) as raised:
        decode("\n".join(lines).encode(), "application/jsonlines")
    assert raised.value.status_code == 400


def test_json_lines_that_would_stack_into_one_image_are_refused():
    body = "\n".join([json.dumps([1] * 28)] * 28).encode()  # 28 lines of 28 numbers
    with pytest.raises(RequestError, match=re.escape("line 1 has shape (28,)")):
        decode(body, "application/jsonlines")


def test_charset_parameter_is_ignored():
    batch = decode(b"[" + b",".join([b"0"] * 784) + b"]", "application/json; charset=utf-8")
    assert batch.shape == (1, 1, 28, 28)


def test_jpeg_and_png_decode_alike():
    png = decode(encode(draw_digit(3), "PNG"), "image/png")
    jpeg = decode(encode(draw_digit(3).convert("RGB"), "JPEG"), "image/jpeg")
    assert np.abs(png - jpeg).mean() < 0.02


@pytest.mark.parametrize("body_type", list(valid_bodies()))
def test_a_valid_body_under_another_type_is_read_or_refused_with_the_type_to_use(body_type):
    body = valid_bodies()[body_type]
    for content_type in DECODERS:
        if content_type == body_type or (body_type, content_type) in READ_ALIKE:
            assert decode(bytearray(body), content_type).shape[1:] == (1, 28, 28)
            continue
        with pytest.raises(RequestError) as raised:
            decode(bytearray(body), content_type)
        assert raised.value.status_code == 400, (body_type, content_type)
        assert f"send it with Content-Type: {body_type}" in raised.value.message, (
            body_type,
            content_type,
            raised.value.message,
        )


def test_an_npy_body_sent_as_npz_says_which_type_it_is():
    with pytest.raises(
        RequestError, match="send it with Content-Type: application/x-npy"
    ) as raised:
        decode(valid_bodies()["application/x-npy"], "application/x-npz")
    assert raised.value.status_code == 400
    assert "is an .npy array" in raised.value.details["reason"]


def test_garbage_under_a_binary_type_says_what_it_is_not():
    for content_type, expected in [
        ("application/x-npz", "not a readable .npz archive (not a zip file)"),
        ("image/png", "not a readable PNG or JPEG image (not an image format)"),
    ]:
        with pytest.raises(RequestError, match=re.escape(expected)):
            decode(b"\x00\x01 garbage", content_type)
