"""Pictures of digits made MNIST-style."""

import numpy as np
from PIL import Image

from container.serving.images import mnist_style
from tests.digits import draw_digit


def test_mnist_style_crops_fits_and_centres_the_ink():
    image = draw_digit(1, size=(300, 300), width=20, margin=0.05)
    canvas = np.zeros((300, 300), np.uint8)  # the digit far off in a corner
    canvas[:] = 235
    canvas[200:300, 200:300] = np.asarray(image.resize((100, 100)))
    out = mnist_style(Image.fromarray(canvas))
    rows, _cols = np.nonzero(out > 0.05)
    assert out.shape == (28, 28) and out.max() == 1.0
    assert rows.max() - rows.min() + 1 <= 21  # fitted into 20x20 (plus resampling spill)
    cy = (out.sum(1) * np.arange(28)).sum() / out.sum()
    cx = (out.sum(0) * np.arange(28)).sum() / out.sum()
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1


def test_light_on_dark_and_transparent_images():
    dark = Image.eval(draw_digit(7), lambda v: 255 - v)  # chalk on a blackboard
    a = mnist_style(draw_digit(7))
    b = mnist_style(dark)
    assert np.abs(a - b).max() < 0.05
    rgba = Image.new("RGBA", (200, 260), (0, 0, 0, 0))
    rgba.putalpha(Image.eval(draw_digit(7), lambda v: 255 - v))  # black ink, clear paper
    c = mnist_style(rgba)
    assert np.abs(a - c).max() < 0.2
