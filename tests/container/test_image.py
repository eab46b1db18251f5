"""`docker run IMAGE train` and `docker run IMAGE serve`, as SageMaker runs them."""

import json
import os
import subprocess
import tarfile
import time

import numpy as np
import pytest
import torch

from container.serving.hooks import model_fn, predict_fn
from local_test.opt_ml import make_opt_ml
from local_test.server import npy, request
from tests.container.helpers import (
    STOP_GRACE_S,
    Endpoint,
    docker,
    remove,
    run_train,
    train_argv,
    unique,
)
from tests.digits import draw_digit, encode
from tests.helpers import failed, load_state_dict_model, read


def test_train_writes_the_model_and_the_success_file(trained):
    base, log = trained
    assert os.path.exists(os.path.join(base, "output", "success"))
    for artifact in ("model.pt", "model.pth", "metrics.json"):
        assert os.path.getsize(os.path.join(base, "model", artifact)) > 0
    for plot in ("training_curves.png", "confusion_matrix.png"):
        assert os.path.getsize(os.path.join(base, "output", "data", plot)) > 0
    assert "Train Epoch: 1 [" in log and "Test Accuracy: " in log
    accuracy = json.loads(read(os.path.join(base, "model", "metrics.json")))["test_accuracy"]
    assert accuracy > 90  # 4,000 training images, one epoch


def test_bad_hyperparameter_fails_the_job_with_its_reason(image, tiny_channel, tmp_path):
    base = make_opt_ml(
        tmp_path, {"dropout": "1.5"}, {"training": tiny_channel}, hosts=("algo-1",), copy=True
    )
    code, log = run_train(image, base, unique("bad"))
    assert "hyperparameter dropout: '1.5' is out of range" in failed(base, code), log


def test_docker_stop_checkpoints_in_time_and_the_rerun_ends_with_the_same_model(
    image, tiny_channel, tmp_path
):
    hyperparameters = {
        "epochs": 2,
        "log_interval": 10,
        "seed": 3,
        "hidden_channels": 8,
        "augment": "true",
    }
    whole = make_opt_ml(
        tmp_path / "whole",
        hyperparameters,
        {"training": tiny_channel},
        hosts=("algo-1",),
        copy=True,
    )
    code, log = run_train(image, whole, unique("whole"))
    assert code == 0, log

    stopped = make_opt_ml(
        tmp_path / "stopped",
        hyperparameters,
        {"training": tiny_channel},
        hosts=("algo-1",),
        copy=True,
    )
    container = unique("stopped")
    process = subprocess.Popen(
        train_argv(image, stopped, container),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in process.stdout:  # stop in the second epoch, mid-way
            lines.append(line)
            if line.startswith("Train Epoch: 2 [1280/"):
                break
        started = time.monotonic()
        docker("stop", "--time", str(STOP_GRACE_S), container, timeout=STOP_GRACE_S + 30)
        rest, _ = process.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        remove(container)
    assert took < STOP_GRACE_S, f"docker stop took {took:.0f} s: the job was killed"
    reason = failed(stopped, process.returncode)
    assert "stopped by signal 15 in epoch 2" in reason, "".join(lines) + rest
    assert os.path.exists(os.path.join(stopped, "checkpoints", "checkpoint.pth"))

    os.remove(os.path.join(stopped, "output", "failure"))  # SageMaker starts each job afresh
    code, log = run_train(image, stopped, unique("resumed"))
    assert code == 0, log
    assert "Resuming from" in log
    a = load_state_dict_model(os.path.join(whole, "model")).state_dict()
    b = load_state_dict_model(os.path.join(stopped, "model")).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def endpoint(image, trained):
    """`docker run IMAGE serve` on the trained model."""
    base, _ = trained
    server = Endpoint(image, os.path.join(base, "model"))
    try:
        print(f"serve healthy {server.wait_healthy():.1f} s after docker run")
        yield server
    finally:
        server.close()


def test_serve_answers_ping_execution_parameters_and_predicts_json_npy_and_png(endpoint, mnist):
    status, _, body = request(endpoint.url + "/ping")
    assert status == 200 and json.loads(body)["status"] == "Healthy"
    status, _, body = request(endpoint.url + "/execution-parameters")
    assert status == 200 and json.loads(body) == {
        "MaxConcurrentTransforms": os.cpu_count(),
        "MaxPayloadInMB": 6,
    }
    x, y = mnist["x_test"][:20], mnist["y_test"][:20]

    status, _, body = endpoint.invoke(
        json.dumps(x.tolist()).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200, body
    labels = [p["label"] for p in json.loads(body)["predictions"]]
    assert np.mean(np.array(labels) == y) >= 0.85

    status, _, body = endpoint.invoke(npy(x), {"Content-Type": "application/x-npy"})
    assert status == 200, body
    assert [p["label"] for p in json.loads(body)["predictions"]] == labels

    status, _, body = endpoint.invoke(encode(draw_digit(7), "PNG"), {"Content-Type": "image/png"})
    assert status == 200, body
    assert len(json.loads(body)["predictions"]) == 1


def test_serve_answers_a_bad_request_with_its_4xx(endpoint):
    status, _, body = endpoint.invoke(b"[[1, 2], [3]]", {"Content-Type": "application/json"})
    assert status == 400 and "error" in json.loads(body), body
    status, _, body = endpoint.invoke(b"hello", {"Content-Type": "text/plain"})
    assert status == 415 and "text/plain" in json.loads(body)["error"], body


def test_serve_stops_at_once_on_docker_stop(endpoint):
    started = time.monotonic()
    docker("stop", "--time", "30", endpoint.name, timeout=60)
    assert time.monotonic() - started < 30


def test_corrupt_channel_fails_the_job_naming_the_file(image, tmp_path):
    channel = tmp_path / "channel"
    channel.mkdir()
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        (channel / name).write_bytes(b"\x1f\x8b\x08 this is not gzip data")
    base = make_opt_ml(
        tmp_path / "opt_ml", {"epochs": 1}, {"training": str(channel)}, hosts=("algo-1",), copy=True
    )
    code, log = run_train(image, base, unique("corrupt"))
    reason = failed(base, code)
    assert "idx" in reason and "ubyte.gz" in reason, reason + log[-2000:]


def test_combine_in_the_image_makes_one_archive_of_a_model_folder_and_a_model_tar(
    image, trained, tiny_channel, tmp_path
):
    base, _ = trained
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:  # as SageMaker packs a model
        for name in ("model.pth", "model.pt", "metrics.json"):
            tar.add(os.path.join(base, "model", name), arcname=name)
    answer = docker(
        "run",
        "--rm",
        "-v",
        f"{tmp_path}:/scratch",
        "-v",
        f"{os.path.join(base, 'model')}:/models/trained:ro",
        "-v",
        f"{tiny_channel}:/test:ro",
        image,
        "combine",
        "--out",
        "/scratch/combined.tar.gz",
        "--test",
        "/test",
        "/models/trained",
        "/scratch/model.tar.gz",
    )
    assert "2 nets in /scratch/combined.tar.gz" in answer.stdout, answer.stdout + answer.stderr
    with tarfile.open(tmp_path / "combined.tar.gz") as tar:
        metrics = json.load(tar.extractfile("metrics.json"))
    with np.load(os.path.join(tiny_channel, "mnist.npz")) as data:
        x, labels = data["x_test"][:, None].astype(np.float32) / 255, data["y_test"]
    here = predict_fn(x, model_fn(os.path.join(base, "model")))
    # One net twice: the committee answers as the net does, scored here the same.
    assert metrics["member_test_accuracy"] == [metrics["test_accuracy"]] * 2
    assert metrics["test_accuracy"] == pytest.approx(100 * np.mean(here.argmax(1) == labels))
    assert metrics["config"]["members"] == 2
