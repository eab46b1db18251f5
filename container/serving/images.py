"""A picture of one digit, of any size and colour, made into a 28x28 image the way MNIST was."""

import io
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from container.serving.errors import RequestError, bad_request
from container.serving.parameters import MAX_IMAGE_PIXELS
from model.networks import IMAGE_SIZE

PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every PNG, with its checksum
JPEG_END = b"\xff\xd9"


def open_image(body):
    """The decoded PNG or JPEG in ``body``; a truncated, unreadable or oversized one is a 4xx."""
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
            elif image.format == "JPEG" and JPEG_END not in body[2:]:
                raise ValueError("truncated JPEG: no end-of-image marker")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RequestError(413, f"image is larger than {MAX_IMAGE_PIXELS} pixels") from None
    except UnidentifiedImageError:
        raise bad_request(
            "body is not a readable PNG or JPEG image (not an image format)"
        ) from None
    except (OSError, ValueError, SyntaxError, struct.error) as e:
        raise bad_request(f"body is not a readable PNG or JPEG image ({str(e)[:200]})") from None
    return image


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
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
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
    canvas[top : top + box.shape[0], left : left + box.shape[1]] = box
    return canvas / canvas.max()
