"""Serverless and asynchronous endpoints run this same image under other limits: a read-only
root with only /tmp writable, one worker and 1 GB of memory, 4 MB payloads (serverless); bodies
up to 1,000 MB and a timeout of up to an hour (asynchronous). Quick sizes here; `make soak` sends
the 100 MB body (ASYNC_PAYLOAD_MB=100) and prints the figures."""

import io
import json
import os
import threading
import time

import numpy as np
import pytest

from tests.container.helpers import Endpoint

ASYNC_PAYLOAD_MB = float(os.environ.get("ASYNC_PAYLOAD_MB", "20"))
# What serverless endpoints give the container: a read-only root, and its smallest memory size.
SERVERLESS = ("--read-only", "--tmpfs", "/tmp", "--memory", "1g", "--memory-swap", "1g")
# An asynchronous endpoint's instance: ml.m5.large has 8 GB; half of it is plenty.
ASYNC = ("--read-only", "--tmpfs", "/tmp", "--memory", "4g")
NPY = {"Content-Type": "application/x-npy"}


def npy_of(x):
    buffer = io.BytesIO()
    np.save(buffer, x)
    return buffer.getvalue()


def images_filling(mnist, megabytes):
    """Test images, repeated, as uint8 npy of about ``megabytes``; and their labels."""
    n = int(megabytes * 2**20 // 784)
    reps = -(-n // len(mnist["x_test"]))
    return np.tile(mnist["x_test"], (reps, 1, 1))[:n], np.tile(mnist["y_test"], reps)[:n]


@pytest.fixture(scope="module")
def model_dir(trained):
    base, _ = trained
    return os.path.join(base, "model")


def labels_of(body):
    return np.array([p["label"] for p in json.loads(body)["predictions"]])


def test_a_serverless_container_starts_read_only_in_1_gb_and_answers_4_mb(image, model_dir, mnist):
    server = Endpoint(
        image,
        model_dir,
        run_args=SERVERLESS,
        SAGEMAKER_MODEL_SERVER_WORKERS=1,
        SAGEMAKER_MAX_PAYLOAD_IN_MB=4,
    )
    try:
        healthy_s = server.wait_healthy()
        x, y = images_filling(mnist, 3.9)
        started = time.monotonic()
        status, _, body = server.invoke(npy_of(x), NPY, timeout=120)
        took = time.monotonic() - started
        assert status == 200, body[:500]
        labels = labels_of(body)
        assert len(labels) == len(x) and np.mean(labels == y) > 0.8
        status, _, body = server.invoke(npy_of(images_filling(mnist, 4.5)[0]), NPY)
        assert status == 413 and b"4 MB limit" in body, body[:300]
        peak = server.peak_memory_mb()
        assert server.running()
        print(
            f"\nserverless (read-only root, 1 GB, one worker): healthy {healthy_s:.1f} s after "
            f"`docker run`; {len(x)} images (3.9 MB npy) in {took:.2f} s; peak memory {peak:.0f} MB"
        )
    finally:
        server.close()


def test_an_async_container_answers_a_large_body_in_full_and_pings_meanwhile(
    image, model_dir, mnist
):
    server = Endpoint(
        image,
        model_dir,
        run_args=ASYNC,
        SAGEMAKER_MODEL_SERVER_WORKERS=1,
        SAGEMAKER_MAX_PAYLOAD_IN_MB=1000,
        SAGEMAKER_MODEL_SERVER_TIMEOUT=3600,
    )
    try:
        server.wait_healthy()
        x, y = images_filling(mnist, ASYNC_PAYLOAD_MB)
        body = npy_of(x)
        answers, pings = [], []

        def send():
            answers.append(server.invoke(body, NPY, timeout=600))

        started = time.monotonic()
        sender = threading.Thread(target=send)
        sender.start()
        while sender.is_alive():
            pings.append(server.ping())
            time.sleep(0.5)
        sender.join()
        took = time.monotonic() - started
        status, _, answer = answers[0]
        assert status == 200, answer[:500]
        labels = labels_of(answer)
        assert len(labels) == len(x) and np.mean(labels == y) > 0.8
        assert set(pings) == {200}, pings
        peak = server.peak_memory_mb()
        print(
            f"\nasync (read-only root, one worker): {len(x)} images "
            f"({len(body) / 2**20:.0f} MB npy) in {took:.1f} s; peak memory {peak:.0f} MB; "
            f"{len(pings)} pings meanwhile, all 200"
        )
    finally:
        server.close()
