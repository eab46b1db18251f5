"""Fixtures every tier shares: real MNIST (from `make data`) as arrays and small channels."""

import os
import subprocess
import sys

import numpy as np
import pytest

from local_test import ROOT
from tests.helpers import DATA_DIR


@pytest.fixture(scope="session")
def mnist():
    """The official splits as uint8 arrays, written by `make data` if missing."""
    from container.training.data import load_mnist

    training, testing = os.path.join(DATA_DIR, "training"), os.path.join(DATA_DIR, "testing")
    if not os.path.isdir(training):
        subprocess.run(
            [sys.executable, "-m", "local_test.prepare_data", "--out", DATA_DIR],
            cwd=ROOT,
            check=True,
        )
    train, test = load_mnist(training, testing)
    return {
        "x_train": train.images[:, 0].numpy(),
        "y_train": train.labels.numpy(),
        "x_test": test.images[:, 0].numpy(),
        "y_test": test.labels.numpy(),
    }


def _subset_channel(mnist, folder, train, test):
    np.savez(
        folder / "mnist.npz",
        x_train=mnist["x_train"][:train],
        y_train=mnist["y_train"][:train],
        x_test=mnist["x_test"][:test],
        y_test=mnist["y_test"][:test],
    )
    return str(folder)


@pytest.fixture(scope="session")
def small_channel(mnist, tmp_path_factory):
    """A training channel of 12,000 real training and 2,000 real test images in one .npz."""
    return _subset_channel(mnist, tmp_path_factory.mktemp("small_channel"), 12000, 2000)


@pytest.fixture(scope="session")
def tiny_channel(mnist, tmp_path_factory):
    """4,000 real training and 1,000 real test images: for tests that train several times."""
    return _subset_channel(mnist, tmp_path_factory.mktemp("tiny_channel"), 4000, 1000)


def _sdk_major():
    from importlib.metadata import version

    return int(version("sagemaker").split(".")[0])


# SDK v2 and v3 share the package name: an environment collects the *_v2.py tests only where v2
# is installed (`make test-sdk-v2`), and the rest where v3 is.
collect_ignore_glob = ["*_v2.py"] if _sdk_major() >= 3 else []
