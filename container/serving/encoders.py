"""Probabilities to answers: one encoder for each media type, Accept negotiation, and one entry
point, ``encode``."""

import io

import numpy as np
import orjson

from container.serving import content_types as ct
from container.serving.errors import not_acceptable


def _records(probabilities):
    labels = probabilities.argmax(axis=1).tolist()
    rows = np.round(probabilities.astype(np.float64), 6).tolist()
    return [
        {"label": label, "probabilities": row, "confidence": row[label]}
        for label, row in zip(labels, rows, strict=True)
    ]


def encode_json(probabilities):
    return orjson.dumps({"predictions": _records(probabilities)})


def encode_jsonlines(probabilities):
    return b"".join(orjson.dumps(r) + b"\n" for r in _records(probabilities))


def encode_csv(probabilities):
    """label,confidence,p0..p9 per image."""
    labels = probabilities.argmax(axis=1)
    return "".join(
        f"{label},{row[label]:.6f}," + ",".join(f"{p:.6f}" for p in row) + "\n"
        for label, row in zip(labels, probabilities, strict=True)
    )


def encode_npy(probabilities):
    buffer = io.BytesIO()
    np.save(buffer, probabilities.astype(np.float32), allow_pickle=False)
    return buffer.getvalue()


ENCODERS = {
    ct.JSON: encode_json,
    ct.JSONLINES: encode_jsonlines,
    ct.CSV: encode_csv,
    ct.NPY: encode_npy,
}


def choose_accept(accept):
    """The first supported media type in an Accept header; JSON for none or */*."""
    if not accept or not accept.strip():
        return ct.JSON
    for part in accept.split(","):
        media_type = ct.media_type(part)
        if media_type in (ct.ANY, "application/*"):
            return ct.JSON
        if media_type in ENCODERS:
            return media_type
    raise not_acceptable(accept)


def encode(probabilities, accept):
    """(body, content type) of ``probabilities`` in the media type ``accept`` asks for."""
    media_type = choose_accept(accept)
    return ENCODERS[media_type](probabilities), media_type
