"""MLflow tracking of the built-in trainer, through the real toolkit (`python -m container
train`), against a real `mlflow server` on loopback."""

import json
import os
import subprocess

import pytest

from local_test import ROOT
from local_test.mlflow_server import MlflowServer
from local_test.opt_ml import make_opt_ml, train_command
from tests.helpers import read

QUICK = {"epochs": 2, "log_interval": 20, "batch_size": 64, "hidden_channels": 8}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    with MlflowServer(tmp_path_factory.mktemp("mlflow"), host="127.0.0.1") as server:
        yield server


def train(base, **environ):
    argv, env = train_command(base)
    env.pop("SM_CHECKPOINT_DIR", None)
    done = subprocess.run(
        argv,
        env={**env, **environ},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_job_is_one_run_with_its_params_epochs_train_loss_reports_and_tags(
    tracking, tiny_channel, tmp_path
):
    from mlflow import MlflowClient

    base = make_opt_ml(tmp_path, QUICK, {"training": tiny_channel})
    code, log = train(
        base,
        MLFLOW_TRACKING_URI=tracking.uri,
        MLFLOW_EXPERIMENT_NAME="mnist-unit",
        TRAINING_JOB_NAME="mnist-unit-job",
    )
    assert code == 0, log
    client = MlflowClient(tracking.uri)
    experiment = client.get_experiment_by_name("mnist-unit")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "mnist-unit-job"
    assert run.data.params["hidden_channels"] == "8" and run.data.params["epochs"] == "2"
    assert run.data.params["model"] == "bncnn" and run.data.params["world_size"] == "1"
    assert run.data.tags["sagemaker.training_job_name"] == "mnist-unit-job"
    accuracy = client.get_metric_history(run.info.run_id, "test_accuracy")
    assert [m.step for m in accuracy] == [1, 2]
    final = json.loads(read(os.path.join(base, "model", "metrics.json")))["test_accuracy"]
    assert accuracy[-1].value == pytest.approx(final)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_loss")] == [1, 2]
    train_loss = client.get_metric_history(run.info.run_id, "train_loss")
    assert len(train_loss) >= 4 and train_loss[-1].value < train_loss[0].value
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts >= {
        "metrics.json",
        "history.json",
        "training_curves.png",
        "confusion_matrix.png",
    }, artifacts
    assert f"MLflow: run {run.info.run_id}" in log


def test_an_unreachable_tracking_server_costs_one_warning_and_the_job_succeeds(
    tiny_channel, tmp_path
):
    base = make_opt_ml(tmp_path, {**QUICK, "epochs": 1}, {"training": tiny_channel})
    code, log = train(base, MLFLOW_TRACKING_URI="http://127.0.0.1:9")  # nothing listens there
    assert code == 0, log
    assert log.count("WARNING: MLflow tracking at http://127.0.0.1:9 is off") == 1, log
    assert os.path.exists(os.path.join(base, "output", "success"))
    assert os.path.exists(os.path.join(base, "model", "model.pth"))


def test_no_tracking_uri_means_no_mlflow(tiny_channel, tmp_path):
    base = make_opt_ml(tmp_path, {**QUICK, "epochs": 1}, {"training": tiny_channel})
    code, log = train(base)
    assert code == 0, log
    assert "MLflow" not in log


def test_the_sagemaker_plugin_says_nothing_about_a_plain_server(tracking, tiny_channel, tmp_path):
    """Its header provider runs for every server and fails for URLs: one warning a request."""
    base = make_opt_ml(tmp_path, {**QUICK, "epochs": 1}, {"training": tiny_channel})
    code, log = train(base, MLFLOW_TRACKING_URI=tracking.uri, MLFLOW_EXPERIMENT_NAME="quiet")
    assert code == 0, log
    assert "WARNING" not in log, log
