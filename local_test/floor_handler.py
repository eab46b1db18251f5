"""The floor that `make bench-serve` measures the image against: a multi-model-server handler
that reads one JSON image with numpy and answers with its brightest pixel, no model and no
checks. It runs under the same server settings as `serve`, so what the image's answers cost
beyond it is what the handler and the network add."""
import json

import numpy as np


def handle(data, context):
    if data is None:  # the server's call at start-up: nothing to load
        return None
    answers = []
    for request in data:
        pixels = np.asarray(json.loads(request.get("body")), dtype=np.float32)
        answers.append(json.dumps({"label": int(pixels.argmax())}))
    return answers
