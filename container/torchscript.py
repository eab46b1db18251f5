"""TorchScript files: what servers and users load, saved and read in one place."""

import contextlib
import warnings

import torch


@contextlib.contextmanager
def quiet():
    """TorchScript is deprecated and says so at every call; it is still what servers load."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def save(net, path):
    with quiet():
        torch.jit.script(net).save(path)


def load(path, map_location="cpu"):
    with quiet():
        return torch.jit.load(path, map_location=map_location)


def script(net):
    with quiet():
        return net if isinstance(net, torch.jit.ScriptModule) else torch.jit.script(net)
