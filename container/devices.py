"""The accelerators a process may use."""

import glob


def gpu_count():
    """How many GPUs the NVIDIA runtime gave this host or container, without importing torch
    (CUDA cannot be used in a process forked after it started)."""
    return len(glob.glob("/dev/nvidia[0-9]*"))


def has_gpu():
    return gpu_count() > 0
