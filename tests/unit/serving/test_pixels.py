"""The one pixel-scale rule, and the shapes every decoder's array may have."""

import numpy as np
import pytest

from container.serving.decoders import decode
from container.serving.errors import RequestError
from container.serving.pixels import to_batch


def test_one_scale_rule_for_every_type():
    image = np.zeros((28, 28), np.uint8)
    image[10:18, 12:16] = 255
    as_uint8 = to_batch(image)
    as_float = to_batch(image / 255.0)
    assert as_uint8.shape == (1, 1, 28, 28) and as_uint8.max() == 1.0
    assert np.allclose(as_uint8, as_float)
    csv = decode(",".join(map(str, image.reshape(-1))).encode(), "text/csv")
    assert np.allclose(csv, as_uint8)


def test_scale_is_decided_per_image():
    faint = np.full((784,), 0.5)
    bright = np.full((784,), 128.0)
    batch = to_batch(np.stack([faint, bright]))
    assert np.allclose(batch[0], 0.5) and np.allclose(batch[1], 128 / 255)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64, np.float32, np.float64])
def test_scaling_leaves_the_callers_array_as_it_was(dtype):
    """float32 on the 0-1 scale is used as it is; anything else is scaled into a new array."""
    pixels = np.arange(2 * 784).reshape(2, 28, 28) % 256
    pixels[1] = pixels[1] > 100  # a 0-1 image beside a 0-255 one
    given = pixels.astype(dtype)
    kept = given.copy()
    batch = to_batch(given)
    assert np.array_equal(given, kept)
    assert batch.dtype == np.float32
    as_float32 = kept.astype(np.float32)
    assert np.array_equal(batch[:, 0], np.stack([as_float32[0] / 255, as_float32[1]]))
    unit = as_float32 / 255
    assert np.shares_memory(to_batch(unit), unit)


@pytest.mark.parametrize(
    "pixels, named",
    [
        (np.full((2, 784), 256, np.uint16), "from 256 to 256"),
        (np.full((2, 784), -3, np.int8), "from -3 to -3"),
        (np.full((2, 784), 255.5, np.float32), "from 255.5 to 255.5"),
    ],
)
def test_pixels_out_of_range_are_named(pixels, named):
    with pytest.raises(RequestError, match=f"{named}; pixels must lie in 0-1 or 0-255"):
        to_batch(pixels)


@pytest.mark.parametrize("shape", [(28, 28), (784,), (4, 28, 28), (4, 784), (4, 1, 28, 28)])
def test_accepted_shapes(shape):
    assert to_batch(np.zeros(shape)).shape[1:] == (1, 28, 28)
