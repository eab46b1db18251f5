"""MLflow tracking from the image: `docker run IMAGE train`, a two-instance job in SDK v3 local
mode, and a short sweep of the original experiment, against a real `mlflow server` this test
starts on the host's address on Docker's bridge (where the containers reach it)."""

import argparse
import os
import subprocess

import pytest

from local_test import sdk, sweep
from local_test.mlflow_server import MlflowServer
from local_test.opt_ml import make_opt_ml
from tests.container.helpers import QUICK, train_argv, unique
from tests.helpers import read


@pytest.fixture(scope="module")
def sess_v3():
    return sdk.session("local")


@pytest.fixture(scope="module")
def tracking(image, tmp_path_factory):
    with MlflowServer(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.fixture(scope="module")
def client(tracking):
    from mlflow import MlflowClient

    return MlflowClient(tracking.uri)


def runs_of(client, experiment):
    found = client.get_experiment_by_name(experiment)
    assert found, f"no experiment {experiment}"
    return client.search_runs([found.experiment_id])


def tiny_inputs(tiny_channel):
    from sagemaker.core.training.configs import InputData

    return [InputData(channel_name="training", data_source=tiny_channel)]


def test_docker_run_train_logs_one_run_with_params_history_and_artifacts(
    image, tiny_channel, tracking, client, tmp_path
):
    base = make_opt_ml(
        tmp_path, {**QUICK, "epochs": 2}, {"training": tiny_channel}, hosts=("algo-1",), copy=True
    )
    argv = train_argv(image, base, unique("tracked"))
    env = ["--env", f"MLFLOW_TRACKING_URI={tracking.uri}", "--env", "MLFLOW_EXPERIMENT_NAME=docker"]
    done = subprocess.run(
        argv[:2] + env + argv[2:], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [run] = runs_of(client, "docker")
    assert run.info.status == "FINISHED"
    assert run.data.params["hidden_channels"] == str(QUICK["hidden_channels"])
    history = client.get_metric_history(run.info.run_id, "test_accuracy")
    assert [m.step for m in history] == [1, 2]
    final = read(os.path.join(base, "model", "metrics.json"))
    assert f'"test_accuracy": {history[-1].value}' in final
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "training_curves.png", "confusion_matrix.png"} <= artifacts


def test_a_two_instance_job_is_one_run(sess_v3, image, tiny_channel, tracking, client, tmp_path):
    model_trainer = sdk.trainer(
        sess_v3,
        "local",
        image,
        sdk.LOCAL_ROLE,
        sdk.local_instance_type(),
        2,
        {**QUICK, "epochs": 1},
        work=str(tmp_path),
        environment={"MLFLOW_TRACKING_URI": tracking.uri, "MLFLOW_EXPERIMENT_NAME": "two"},
    )
    model_trainer.train(tiny_inputs(tiny_channel), wait=True, logs=False)
    [run] = runs_of(client, "two")
    assert run.info.status == "FINISHED" and run.data.params["world_size"] == "2"
    assert len(client.get_metric_history(run.info.run_id, "test_accuracy")) == 1


def test_a_short_sweep_is_one_experiment_and_its_table_comes_from_mlflow(
    sess_v3, image, tiny_channel, tracking, client, tmp_path
):
    args = argparse.Namespace(
        mode="local",
        image_uri=image,
        role=sdk.LOCAL_ROLE,
        instance_type=sdk.local_instance_type(),
        output=None,
        work=str(tmp_path),
    )
    rows = sweep.run(
        sess_v3,
        args,
        widths=(2, 5),
        epochs=1,
        inputs=tiny_inputs(tiny_channel),
        tracking_uri=tracking.uri,
        experiment="sweep",
        with_default=False,
    )
    runs = {r.info.run_name: r for r in runs_of(client, "sweep")}
    assert sorted(runs) == ["baseline, hidden_channels=2", "baseline, hidden_channels=5"]
    assert len({r.data.tags["sweep"] for r in runs.values()}) == 1
    for label, accuracy, _ in rows:
        assert accuracy == runs[label].data.metrics["final_test_accuracy"]
        assert runs[label].data.params["hidden_channels"] == label.rsplit("=", 1)[1]
    table, _ = sweep.report(rows, 1, str(tmp_path / "results"))
    assert f"{rows[0][1]:.2f}" in table
