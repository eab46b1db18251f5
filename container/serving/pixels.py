"""Any accepted array of pixels to the batch the net takes: float32 (N, 1, 28, 28) in 0-1.

One scale rule for every input type: an image whose largest value is above 1 is on the 0-255
scale, otherwise on the 0-1 scale; values must lie in [0, 255].
"""

import numpy as np

from container.serving.errors import SHAPES, bad_request
from model.networks import IMAGE_SIZE

PIXELS = IMAGE_SIZE * IMAGE_SIZE
# The shapes of one image: a line of JSON Lines holding one of these is one image.
ONE_IMAGE = ((PIXELS,), (IMAGE_SIZE, IMAGE_SIZE), (1, IMAGE_SIZE, IMAGE_SIZE))


def to_batch(array, name="input"):
    """``array`` (any accepted shape) as float32 (N, 1, 28, 28) in 0-1, per the scale rule;
    ``name`` says in an error which part of the request it was."""
    try:
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":  # not complex, text, dates, records or objects
            raise TypeError
        integer = array.dtype.kind != "f"  # integers and booleans: converted once, at the end
        pixels = array if integer else array.astype(np.float32, copy=False)
        copied, array = pixels is not array, pixels
    except (ValueError, TypeError, OverflowError):
        raise bad_request(
            f"{name} is not an array of real numbers (ragged lists, text, complex numbers?)"
        ) from None
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
        raise bad_request(
            f"{name} has pixel values from {array.min():g} to {high:g}; pixels must lie in "
            f"0-1 or 0-255"
        )
    on_255 = peak > 1
    if not on_255.any():  # all on the 0-1 scale: float32 goes on as it came, not copied
        return array.astype(np.float32) if integer else array
    # One scalar divisor where every image is on 0-255, the usual case; else one a row.
    divisor = (
        np.float32(255)
        if on_255.all()
        else np.where(on_255, 255.0, 1.0).astype(np.float32)[:, None, None, None]
    )
    if integer:  # uint8 pixels, the usual case: converted and scaled in one pass
        return np.divide(array, divisor, dtype=np.float32)
    if copied:  # scaled in place: the copy is this function's own
        return np.divide(array, divisor, out=array)
    return array / divisor  # the caller's array stays as it was
