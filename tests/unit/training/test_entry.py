"""Training through the real sagemaker-training toolkit (`python -m container train`) against
SageMaker-style /opt/ml trees in temporary folders, on real MNIST images."""

import json
import os
import re
import signal
import time
from dataclasses import asdict

import numpy as np
import pytest
import torch

from container.serving.engines import OnnxEngine
from container.serving.hooks import model_fn, predict_fn
from container.training.hyperparameters import parse_hyperparameters
from container.training.loop import augmented_views, augments
from container.training.metrics import METRIC_DEFINITIONS
from local_test.opt_ml import make_opt_ml
from tests.helpers import failed, load_state_dict_model, read, run_training, start_training

# The default batch of 128 is tuned for 60,000 images; 12,000 take a smaller one.
QUICK = {"epochs": 1, "log_interval": 50, "batch_size": 64}
# The toolkit's paths, for parsing hyperparameters alone.
PATHS = {"SM_MODEL_DIR": "/m", "SM_OUTPUT_DATA_DIR": "/o", "SM_CHANNEL_TRAINING": "/t"}


@pytest.fixture(scope="module")
def trained(small_channel, tmp_path_factory):
    """One short real run, shared by the tests that read what it left."""
    base = make_opt_ml(tmp_path_factory.mktemp("opt_ml"), QUICK, {"training": small_channel})
    code, log = run_training(base)
    assert code == 0, log
    return base, log


def test_short_run_reaches_real_accuracy(trained):
    base, log = trained
    metrics = json.loads(read(os.path.join(base, "model", "metrics.json")))
    assert metrics["test_accuracy"] >= 96.0, log
    assert f"Test Accuracy: {metrics['test_accuracy']:.2f}%;" in log
    assert os.path.exists(os.path.join(base, "output", "success"))
    assert not os.path.exists(os.path.join(base, "output", "failure"))


def test_artifacts_rebuild_the_same_model(trained, mnist):
    base, _ = trained
    model_dir = os.path.join(base, "model")
    scripted = torch.jit.load(os.path.join(model_dir, "model.pt")).eval()
    rebuilt = load_state_dict_model(model_dir)
    images = torch.from_numpy(mnist["x_test"][-500:]).float().div(255).unsqueeze(1)
    labels = torch.from_numpy(mnist["y_test"][-500:])
    with torch.no_grad():
        a, b = scripted(images), rebuilt(images)
    assert torch.allclose(a, b, atol=1e-5)
    assert (a.argmax(1) == labels).float().mean() > 0.95  # images the run never tested on


def test_reports_in_the_output_data_dir(trained):
    base, _ = trained
    out = os.path.join(base, "output", "data")
    history = json.loads(read(os.path.join(out, "history.json")))
    assert [h["epoch"] for h in history["epochs"]] == [1]
    assert sum(map(sum, history["confusion_matrix"])) == 2000
    for png in ("training_curves.png", "confusion_matrix.png"):
        with open(os.path.join(out, png), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_log_lines_feed_the_metric_definitions(trained):
    _, log = trained
    assert re.search(r"Train Epoch: 1 \[3200/12000 \(27%\)\], Train Loss: [0-9.]+;", log)
    for definition in METRIC_DEFINITIONS:
        values = re.findall(definition["Regex"], log)
        assert values and all(float(v) >= 0 for v in values), definition["Name"]


@pytest.mark.parametrize(
    "hyperparameters,expected",
    [
        ({"dropout": "1.5"}, "hyperparameter dropout: '1.5' is out of range"),
        ({"optimizer": "lbfgs"}, "choose from sgd, adam, adamw, adadelta"),
        ({"model": "baseline", "kernel_size": "11"}, "kernel_size 11 leaves no pixels"),
        ({"learning_rate": "0.1"}, "unknown hyperparameter(s): learning_rate"),
    ],
)
def test_bad_hyperparameter_fails_at_once_with_a_readable_reason(
    small_channel, tmp_path, hyperparameters, expected
):
    base = make_opt_ml(tmp_path, hyperparameters, {"training": small_channel})
    started = time.monotonic()
    code, log = run_training(base)
    assert expected in failed(base, code), log
    assert "Traceback" not in read(os.path.join(base, "output", "failure"))
    assert time.monotonic() - started < 60
    assert (
        not os.listdir(os.path.join(base, "model"))
        if os.path.isdir(os.path.join(base, "model"))
        else True
    )


def test_corrupt_data_names_the_file(small_channel, tmp_path):
    channel = tmp_path / "channel"
    channel.mkdir()
    with open(os.path.join(small_channel, "mnist.npz"), "rb") as f:
        (channel / "mnist.npz").write_bytes(f.read()[:100000])
    base = make_opt_ml(tmp_path / "opt_ml", QUICK, {"training": str(channel)})
    code, log = run_training(base)
    reason = failed(base, code)
    assert "input/data/training/mnist.npz: not a readable .npz file" in reason, log


def test_missing_channel_is_reported(tmp_path):
    base = make_opt_ml(tmp_path, QUICK, {"testing": str(tmp_path)})
    code, log = run_training(base)
    assert "no 'training' channel (SM_CHANNEL_TRAINING is unset)" in failed(base, code), log


def test_broken_job_config_is_a_failure_not_a_silent_success(tmp_path, small_channel):
    base = make_opt_ml(tmp_path, QUICK, {"training": small_channel})
    os.remove(os.path.join(base, "input", "config", "inputdataconfig.json"))
    code, log = run_training(base)
    assert "inputdataconfig.json" in failed(base, code), log


def test_sigterm_checkpoints_and_resume_ends_with_the_same_model(tiny_channel, tmp_path):
    hyperparameters = {  # every source of randomness
        "epochs": 2,
        "log_interval": 10,
        "seed": 7,
        "hidden_channels": 8,
        "dropout": 0.1,
        "augment": "true",
        "elastic": 1.5,
        "ema": 0.99,
    }
    whole = make_opt_ml(tmp_path / "whole", hyperparameters, {"training": tiny_channel})
    code, log = run_training(whole)
    assert code == 0, log

    stopped = make_opt_ml(tmp_path / "stopped", hyperparameters, {"training": tiny_channel})
    process = start_training(stopped)
    lines = []
    for line in process.stdout:  # stop in the second epoch, mid-way
        lines.append(line)
        if line.startswith("Train Epoch: 2 [1280/"):
            process.send_signal(signal.SIGTERM)
            break
    rest, _ = process.communicate(timeout=120)
    reason = failed(stopped, process.returncode)
    assert "stopped by signal 15 in epoch 2" in reason, "".join(lines) + rest
    assert os.path.exists(os.path.join(stopped, "checkpoints", "checkpoint.pth"))
    os.remove(os.path.join(stopped, "output", "failure"))

    code, log = run_training(stopped)
    assert code == 0, log
    assert "Resuming from" in log and "epoch 2, batch" in log
    a = load_state_dict_model(os.path.join(whole, "model")).state_dict()
    b = load_state_dict_model(os.path.join(stopped, "model")).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # What is saved is the weights' moving average, not the last step's weights.
    state = torch.load(os.path.join(stopped, "checkpoints", "checkpoint.pth"), weights_only=True)
    averaged = {k.removeprefix("module."): v for k, v in state["averaged"].items()}
    assert all(torch.equal(a[k], averaged[k]) for k in a)
    assert not torch.equal(a["head.weight"], state["model"]["head.weight"])
    accuracy = [
        json.loads(read(os.path.join(d, "model", "metrics.json")))["test_accuracy"]
        for d in (whole, stopped)
    ]
    assert accuracy[0] == accuracy[1]


def test_an_ensemble_of_deeper_nets_trains_each_member_and_serves_their_mean(
    tiny_channel, tmp_path, mnist
):
    hyperparameters = {
        "epochs": 2,
        "batch_size": 64,
        "hidden_channels": 8,
        "members": 2,
        "depth": 2,
        "stem": "full",
        "augment": "true",  # views of the batch for each member
        "augment_views": 2,
    }
    base = make_opt_ml(tmp_path, hyperparameters, {"training": tiny_channel})
    code, log = run_training(base)
    assert code == 0, log
    model_dir = os.path.join(base, "model")
    ensemble = load_state_dict_model(model_dir)
    x = torch.from_numpy(mnist["x_test"][-300:]).float().div(255).unsqueeze(1)
    labels = torch.from_numpy(mnist["y_test"][-300:])
    with torch.no_grad():
        alone = [(m(x).argmax(1) == labels).float().mean() for m in ensemble.members]
        mean = torch.stack([m(x).softmax(1) for m in ensemble.members]).mean(0)
    assert min(alone) > 0.85, alone  # each member learned on its own
    # Batch norm's statistics describe the training images as served, not as augmented.
    with np.load(os.path.join(tiny_channel, "mnist.npz")) as data:
        train = torch.from_numpy(data["x_train"]).float().div(255).unsqueeze(1)
    for member in ensemble.members:
        stem = member.features[0](member.norm(train))
        norm = member.features[1]
        # Batch norm sums a batch in float32, on one thread a few 1e-4 off; the augmented
        # statistics lie about 1e-2 away.
        torch.testing.assert_close(norm.running_mean, stem.mean((0, 2, 3)), atol=5e-4, rtol=0)
    model = model_fn(model_dir)  # the serving path: folded, on ONNX Runtime
    served = predict_fn(x.numpy(), model)
    np.testing.assert_allclose(served, mean.numpy(), atol=1e-4)
    metrics = json.loads(read(os.path.join(model_dir, "metrics.json")))
    assert (metrics["config"]["members"], metrics["config"]["depth"]) == (2, 2)
    assert metrics["config"]["stem"] == "full"


def test_shift_views_leave_training_alone_and_serve_the_mean_of_the_shifted_images(
    tiny_channel, tmp_path, mnist
):
    runs = {}
    for shift_views in ("false", "true"):
        hyperparameters = {
            **QUICK,
            "hidden_channels": 8,
            "augment": "true",
            "ema": 0.99,
            "shift_views": shift_views,
        }
        base = make_opt_ml(tmp_path / shift_views, hyperparameters, {"training": tiny_channel})
        code, log = run_training(base)
        assert code == 0, log
        runs[shift_views] = os.path.join(base, "model")
    plain, shifted = (load_state_dict_model(runs[k]) for k in ("false", "true"))
    for name, value in plain.state_dict().items():  # the same weights, seed for seed
        assert torch.equal(shifted.state_dict()[f"net.{name}"], value), name
    x = torch.from_numpy(mnist["x_test"][:300]).float().div(255).unsqueeze(1)
    pad = torch.nn.functional.pad
    right, left = pad(x, (1, 0))[..., :-1], pad(x, (0, 1))[..., 1:]
    down, up = pad(x, (0, 0, 1, 0))[..., :-1, :], pad(x, (0, 0, 0, 1))[..., 1:, :]
    with torch.no_grad():
        mean = torch.stack([plain(v).softmax(1) for v in (x, right, left, down, up)]).mean(0)
    model = model_fn(runs["true"])
    assert isinstance(model, OnnxEngine)  # the shifts export with the net
    served = predict_fn(x.numpy(), model)
    np.testing.assert_allclose(served, mean.numpy(), atol=1e-4)
    metrics = json.loads(read(os.path.join(runs["true"], "metrics.json")))
    assert metrics["config"]["shift_views"] is True


def test_the_last_plain_epochs_train_on_unaugmented_images():
    flags = ["--epochs", "5", "--augment", "true", "--plain_epochs", "2"]
    config, _ = parse_hyperparameters(flags, PATHS)
    assert [augments(config, epoch) for epoch in range(1, 6)] == [True] * 3 + [False] * 2
    config, _ = parse_hyperparameters(flags[:4], PATHS)
    assert all(augments(config, epoch) for epoch in range(1, 6))


def test_augment_views_hold_each_image_that_many_times_each_augmented_its_own_way(mnist):
    config, _ = parse_hyperparameters(["--augment", "true", "--augment_views", "3"], PATHS)
    x = torch.from_numpy(mnist["x_train"][:4]).float().div(255).unsqueeze(1)
    y = torch.from_numpy(mnist["y_train"][:4])
    views, labels = augmented_views(x, y, config)
    assert views.shape == (12, 1, 28, 28)
    assert labels.tolist() == y.tolist() * 3
    for i in range(4):  # an image's three views: each its own rotation, shift and scale
        a, b, c = views[i], views[4 + i], views[8 + i]
        assert not (torch.equal(a, b) or torch.equal(a, c) or torch.equal(b, c))


def test_checkpoint_from_other_hyperparameters_is_refused(tiny_channel, tmp_path):
    base = make_opt_ml(tmp_path, {"epochs": 1, "seed": 1}, {"training": tiny_channel})
    os.makedirs(os.path.join(base, "checkpoints"))
    config, _ = parse_hyperparameters(["--epochs", "1", "--seed", "2"], PATHS)
    torch.save({"config": asdict(config)}, os.path.join(base, "checkpoints", "checkpoint.pth"))
    code, log = run_training(base)
    assert "written with other hyperparameters (seed)" in failed(base, code), log


def test_two_processes_train_one_model_with_ddp(tiny_channel, tmp_path):
    hosts = ("localhost", "127.0.0.1")  # two names for this machine: two SageMaker hosts
    bases = [
        make_opt_ml(
            tmp_path / host,
            {"epochs": 2, "log_interval": 20, "hidden_channels": 8, "batch_size": 64},
            {"training": tiny_channel},
            hosts=hosts,
            current_host=host,
        )
        for host in hosts
    ]
    processes = [start_training(base) for base in bases]
    logs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], logs
    assert "on 2 process(es)" in logs[0]
    for base in bases:
        assert os.path.exists(os.path.join(base, "output", "success"))
    metrics = json.loads(read(os.path.join(bases[0], "model", "metrics.json")))
    assert metrics["world_size"] == 2 and metrics["test_accuracy"] >= 93.0
    assert not os.path.exists(os.path.join(bases[1], "model", "model.pt"))  # rank 0 writes
    # each process took half of every 64-image batch: 20 steps are 1,280 of 4,000 images
    assert "Train Epoch: 1 [1280/4000 (32%)]" in logs[0]


def test_a_host_that_dies_fails_the_other_fast_with_a_clear_message(tiny_channel, tmp_path):
    hosts = ("localhost", "127.0.0.1")
    bases = [
        make_opt_ml(
            tmp_path / host,
            {"epochs": 3, "log_interval": 5, "hidden_channels": 8},
            {"training": tiny_channel},
            hosts=hosts,
            current_host=host,
        )
        for host in hosts
    ]
    first, second = [start_training(base) for base in bases]
    for line in first.stdout:
        if line.startswith("Train Epoch: 1 ["):
            break
    second.kill()  # the second host is gone, mid-epoch
    started = time.monotonic()
    log, _ = first.communicate(timeout=300)
    second.communicate()
    took = time.monotonic() - started
    reason = failed(bases[0], first.returncode)
    assert "another host or process of the job left" in reason, log[-3000:]
    assert took < 60, f"the surviving host took {took:.0f} s to give up"
