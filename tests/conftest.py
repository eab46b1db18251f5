"""Shared fixtures: real MNIST (from `make data`) and SageMaker-style /opt/ml trees."""
import os
import subprocess
import sys

import numpy as np
import pytest

from local_test.opt_ml import ROOT, train_command

DATA_DIR = os.environ.get("MNIST_DATA_DIR", os.path.join(ROOT, "data"))


@pytest.fixture(scope="session")
def mnist():
    """The official splits as uint8 arrays, written by `make data` if missing."""
    from container.data import load_mnist
    training, testing = os.path.join(DATA_DIR, "training"), os.path.join(DATA_DIR, "testing")
    if not os.path.isdir(training):
        subprocess.run([sys.executable, "-m", "local_test.prepare_data", "--out", DATA_DIR],
                       cwd=ROOT, check=True)
    train, test = load_mnist(training, testing)
    return {"x_train": train.images[:, 0].numpy(), "y_train": train.labels.numpy(),
            "x_test": test.images[:, 0].numpy(), "y_test": test.labels.numpy()}


@pytest.fixture(scope="session")
def small_channel(mnist, tmp_path_factory):
    """A training channel of 12,000 real training and 2,000 real test images in one .npz."""
    folder = tmp_path_factory.mktemp("small_channel")
    np.savez(folder / "mnist.npz", x_train=mnist["x_train"][:12000],
             y_train=mnist["y_train"][:12000], x_test=mnist["x_test"][:2000],
             y_test=mnist["y_test"][:2000])
    return str(folder)


def start_training(base):
    """The image's `train` command on ``base``, as SageMaker starts it."""
    argv, env = train_command(base)
    env.pop("SM_CHECKPOINT_DIR", None)
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run_training(base, timeout=600):
    process = start_training(base)
    log, _ = process.communicate(timeout=timeout)
    return process.returncode, log
