"""Each answer type's encoder and Accept negotiation."""

import io
import json

import numpy as np
import pytest

from container.serving.content_types import OUTPUTS
from container.serving.encoders import ENCODERS, choose_accept, encode
from container.serving.errors import RequestError
from container.serving.parameters import MAX_ANSWER_BYTES_PER_IMAGE


def test_the_table_encodes_every_answer_type():
    assert tuple(ENCODERS) == OUTPUTS


@pytest.mark.parametrize(
    "accept,expected",
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("image/png, application/x-npy;q=0.5", "application/x-npy"),
    ],
)
def test_accept_negotiation(accept, expected):
    assert choose_accept(accept) == expected


def test_unsupported_accept_is_406():
    with pytest.raises(RequestError) as raised:
        choose_accept("image/png")
    assert raised.value.status_code == 406
    assert "application/x-npy" in json.loads(raised.value.body())["accepted_response_types"]


def test_outputs_agree():
    probabilities = np.eye(10, dtype=np.float32)[[3, 8]] * 0.9 + 0.01
    as_json = json.loads(encode(probabilities, "application/json")[0])["predictions"]
    assert [p["label"] for p in as_json] == [3, 8] and as_json[0]["confidence"] == 0.91
    lines = encode(probabilities, "application/jsonlines")[0].splitlines()
    assert [json.loads(line) for line in lines] == as_json
    csv = encode(probabilities, "text/csv")[0].splitlines()
    assert csv[0].split(",")[:2] == ["3", "0.910000"]
    npy, media_type = encode(probabilities, "application/x-npy")
    assert media_type == "application/x-npy"
    assert np.array_equal(np.load(io.BytesIO(npy)), probabilities)


@pytest.mark.parametrize("accept", list(ENCODERS))
def test_no_answer_spends_more_than_its_share_on_an_image(accept):
    rng = np.random.default_rng(0)
    for rows in (
        np.full((500, 10), 0.123457, np.float32),  # every value at full length
        rng.dirichlet(np.full(10, 0.3), 2000).astype(np.float32),
    ):
        body, _ = encode(rows, accept)
        assert len(body) <= len(rows) * MAX_ANSWER_BYTES_PER_IMAGE
