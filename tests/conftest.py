"""Shared fixtures: real MNIST (from `make data`) and SageMaker-style /opt/ml trees."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from local_test.opt_ml import ROOT, train_command
from model.networks import NetConfig, build_model

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


def _subset_channel(mnist, folder, train, test):
    np.savez(folder / "mnist.npz", x_train=mnist["x_train"][:train],
             y_train=mnist["y_train"][:train], x_test=mnist["x_test"][:test],
             y_test=mnist["y_test"][:test])
    return str(folder)


@pytest.fixture(scope="session")
def small_channel(mnist, tmp_path_factory):
    """A training channel of 12,000 real training and 2,000 real test images in one .npz."""
    return _subset_channel(mnist, tmp_path_factory.mktemp("small_channel"), 12000, 2000)


@pytest.fixture(scope="session")
def tiny_channel(mnist, tmp_path_factory):
    """4,000 real training and 1,000 real test images: for tests that train several times."""
    return _subset_channel(mnist, tmp_path_factory.mktemp("tiny_channel"), 4000, 1000)


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


def read(path):
    with open(path) as f:
        return f.read()


def failed(base, code):
    """The failure file's reason, after checking the job failed as SageMaker sees it."""
    assert code != 0
    assert not os.path.exists(os.path.join(base, "output", "success"))
    return read(os.path.join(base, "output", "failure"))


def load_state_dict_model(model_dir):
    saved = torch.load(os.path.join(model_dir, "model.pth"), weights_only=True)
    net = build_model(NetConfig(**saved["config"]))
    net.load_state_dict(saved["state_dict"])
    return net.eval()
