"""Helpers the tests share: training runs through the image's `train`, their files, and a tiny
model folder."""

import os
import subprocess
from dataclasses import asdict

import torch

from local_test import ROOT
from local_test.opt_ml import train_command
from model.networks import NetConfig, build_model, make_config

DATA_DIR = os.environ.get("MNIST_DATA_DIR", os.path.join(ROOT, "data"))
# The payload limit the serving tests' server runs under.
PAYLOAD_LIMIT_MB = 2


def start_training(base):
    """The image's `train` command on ``base``, as SageMaker starts it."""
    argv, env = train_command(base)
    env.pop("SM_CHECKPOINT_DIR", None)
    return subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


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


def tiny_model_dir(folder, **settings):
    """``folder`` with the checkpoint of an untrained 4-channel bncnn (and ``settings``, the net
    config's fields), as training writes it."""
    config = make_config("bncnn", **{"hidden_channels": 4, **settings})
    torch.save(
        {"format": 1, "config": asdict(config), "state_dict": build_model(config).state_dict()},
        os.path.join(folder, "model.pth"),
    )
    return str(folder)
