"""Committees of models trained apart, from probabilities worked out by hand, and made one
model."""

import numpy as np
import torch

from benchmarks.committee import as_one_model, committee_rows, wrong_everywhere
from container.serving.hooks import model_fn, predict_fn
from tests.helpers import tiny_model_dir


def confident(predicted, confidence):
    """Probabilities that give ``confidence`` to each predicted class, the rest evenly."""
    p = np.full((len(predicted), 10), (1 - confidence) / 9)
    p[np.arange(len(predicted)), predicted] = confidence
    return p


def test_committees_average_probabilities():
    labels = np.array([0, 1, 2, 3])
    a = confident([0, 1, 2, 9], 0.9)  # each model wrong on one image of its own
    b = confident([0, 1, 9, 3], 0.8)
    c = confident([0, 9, 2, 3], 0.7)
    rows = committee_rows([a, b, c], labels)
    assert rows[0] == (1, 3, 75.0, 75.0, 75.0)
    # Two disagree on one image: the surer one decides it, right or wrong.
    assert rows[1] == (2, 3, 75.0, 75.0, 75.0)
    # Three: the two right ones outweigh the wrong one everywhere.
    assert rows[2] == (3, 1, 100.0, 100.0, 100.0)
    assert wrong_everywhere([a, b, c], labels) == (0, 3)
    assert wrong_everywhere([a, a], labels) == (1, 1)


def test_the_models_as_one_score_as_their_committee_or_say_why_they_cannot_be_one(tmp_path):
    folders = []
    for seed, width in enumerate((4, 4, 8)):
        torch.manual_seed(seed)
        (tmp_path / f"m{seed}").mkdir()
        folders.append(tiny_model_dir(tmp_path / f"m{seed}", hidden_channels=width))
    images = np.random.default_rng(0).random((200, 1, 28, 28), dtype=np.float32)
    probabilities = [predict_fn(images, model_fn(f)) for f in folders[:2]]
    labels = np.mean(probabilities, 0).argmax(1)  # the committee is right everywhere
    labels[:50] = (labels[:50] + 1) % 10  # and wrong on a quarter
    sentence = as_one_model(folders[:2], images, labels)
    assert sentence.startswith("All 2 nets as one model (`combine`): test accuracy 75.00%;")
    assert as_one_model(folders[1:], images, labels).startswith(
        f"Not combined into one model: {folders[2]} differs from {folders[1]} in hidden_channels"
    )
