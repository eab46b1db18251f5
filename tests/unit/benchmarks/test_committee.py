"""Committees of models trained apart, from probabilities worked out by hand."""

import numpy as np

from benchmarks.committee import committee_rows, wrong_everywhere


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
