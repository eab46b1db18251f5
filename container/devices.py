"""The accelerators a process may use."""

import glob


def has_gpu():
    """Whether the NVIDIA runtime gave this host or container a GPU, without importing torch
    (CUDA cannot be used in a process forked after it started)."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))
