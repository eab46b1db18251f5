"""Hand-drawn digits made with PIL: pen strokes on paper, at any size and stroke width."""

import io

from PIL import Image, ImageDraw

# Strokes on a unit box (x right, y down), as a person writes each digit.
STROKES = {
    0: [("ellipse", (0.15, 0.0, 0.85, 1.0))],
    1: [("line", [(0.45, 0.15), (0.55, 0.0), (0.55, 1.0)])],
    2: [("arc", (0.1, 0.0, 0.9, 0.6), 180, 360), ("line", [(0.9, 0.3), (0.1, 1.0), (0.95, 1.0)])],
    3: [("arc", (0.15, 0.0, 0.85, 0.5), 200, 450), ("arc", (0.1, 0.5, 0.9, 1.0), 270, 520)],
    4: [("line", [(0.6, 0.0), (0.05, 0.65), (0.95, 0.65)]), ("line", [(0.7, 0.3), (0.7, 1.0)])],
    5: [
        ("line", [(0.85, 0.0), (0.2, 0.0), (0.15, 0.45)]),
        ("arc", (0.1, 0.35, 0.9, 1.0), 220, 500),
    ],
    6: [("arc", (0.1, 0.0, 1.3, 1.4), 180, 260), ("ellipse", (0.1, 0.45, 0.85, 1.0))],
    7: [("line", [(0.05, 0.0), (0.95, 0.0), (0.35, 1.0)])],
    8: [("ellipse", (0.2, 0.0, 0.8, 0.48)), ("ellipse", (0.12, 0.48, 0.88, 1.0))],
    9: [("ellipse", (0.15, 0.0, 0.85, 0.5)), ("line", [(0.85, 0.25), (0.8, 1.0)])],
}


def draw_digit(digit, size=(200, 260), width=14, ink=20, paper=235, margin=0.2, mode="L"):
    """A dark-on-light drawing of ``digit`` as a PIL image."""
    w, h = size
    image = Image.new(mode, size, paper if mode == "L" else (paper,) * 3)
    pen = ImageDraw.Draw(image)
    colour = ink if mode == "L" else (ink, ink, ink + 30)
    left, top = w * margin, h * margin
    box_w, box_h = w * (1 - 2 * margin), h * (1 - 2 * margin)

    def xy(x, y):
        return left + x * box_w, top + y * box_h

    for kind, shape, *angles in STROKES[digit]:
        if kind == "line":
            pen.line([xy(*p) for p in shape], fill=colour, width=width, joint="curve")
        else:
            box = [*xy(shape[0], shape[1]), *xy(shape[2], shape[3])]
            if kind == "ellipse":
                pen.ellipse(box, outline=colour, width=width)
            else:
                pen.arc(box, angles[0], angles[1], fill=colour, width=width)
    return image


def encode(image, fmt):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


# A small sketch, a thick marker on a phone-photo-sized page, a thin pencil on grey paper.
VARIANTS = [
    dict(size=(64, 80), width=6),
    dict(size=(600, 800), width=40),
    dict(size=(400, 520), width=8, ink=90, paper=190, margin=0.3),
]
