"""The image through the real SageMaker Python SDK in local mode (Docker and docker-compose):
training on one and two instances, deploy and predict with each serializer, batch transform."""

import os
import tarfile
import urllib.parse

import numpy as np
import pytest

from local_test import job_files
from local_test import sdk_v2 as sdk
from tests.container.helpers import docker

HYPERPARAMETERS = {"epochs": 1, "hidden_channels": 8, "batch_size": 32, "log_interval": 50}


@pytest.fixture(scope="module")
def sess():
    return sdk.session("local")


def train(sess, image, channel, tmp_path, instances):
    est = sdk.estimator(
        sess,
        image,
        sdk.LOCAL_ROLE,
        sdk.local_instance_type(),
        instances,
        HYPERPARAMETERS,
        job_files.uri(str(tmp_path)),
    )
    est.fit({"training": job_files.uri(channel)})
    return est.model_data


def members(model_data):
    with tarfile.open(urllib.parse.urlparse(model_data).path) as tar:
        return sorted(tar.getnames())


@pytest.fixture(scope="module")
def one_instance(sess, image, tiny_channel, tmp_path_factory):
    model_data = train(sess, image, tiny_channel, tmp_path_factory.mktemp("one"), 1)
    return model_data, job_files.read_metrics(model_data)


def test_local_training_on_one_instance(one_instance):
    model_data, metrics = one_instance
    assert members(model_data) == ["metrics.json", "model.pt", "model.pth"]
    assert metrics["world_size"] == 1 and metrics["test_accuracy"] > 90


def test_local_training_on_two_instances_gives_one_model_as_accurate(
    sess, image, tiny_channel, tmp_path, one_instance, capfd
):
    model_data = train(sess, image, tiny_channel, tmp_path, 2)
    log = capfd.readouterr().out
    for host in ("algo-1", "algo-2"):  # both containers trained and finished
        assert any(
            host in line and "Reporting training SUCCESS" in line for line in log.splitlines()
        ), log[-3000:]
    assert "Training bncnn on 2 process(es)" in log
    # Rank 0 alone writes: the archive holds one model, trained by both.
    assert members(model_data) == ["metrics.json", "model.pt", "model.pth"]
    metrics = job_files.read_metrics(model_data)
    assert metrics["world_size"] == 2
    assert abs(metrics["test_accuracy"] - one_instance[1]["test_accuracy"]) < 2


def running_containers(image):
    return docker("ps", "--quiet", "--filter", f"ancestor={image}").stdout.split()


def test_local_deploy_and_predict_with_each_serializer(sess, image, one_instance, mnist):
    model_data, _metrics = one_instance
    x, y = mnist["x_test"][:200], mnist["y_test"][:200]
    predictor = sdk.model(sess, image, sdk.LOCAL_ROLE, model_data).deploy(
        initial_instance_count=1, instance_type=sdk.local_instance_type()
    )
    try:
        labels = {}
        for kind, count in (("json", 200), ("npy", 200), ("png", 5)):
            labels[kind], _ = sdk.predict(predictor, x[:count], kind)
        assert labels["json"] == labels["npy"]
        assert np.mean(np.array(labels["json"]) == y) > 0.85
        assert len(labels["png"]) == 5
    finally:
        predictor.delete_endpoint(delete_endpoint_config=True)
    assert running_containers(image) == []


@pytest.mark.parametrize("content_type", ["application/jsonlines", "text/csv"])
def test_local_batch_transform(sess, image, one_instance, mnist, tmp_path, content_type):
    model_data, _ = one_instance
    x, y = mnist["x_test"][:1000], mnist["y_test"][:1000]
    os.makedirs(tmp_path / "input")
    if content_type == "text/csv":
        np.savetxt(tmp_path / "input" / "test.csv", x.reshape(len(x), -1), fmt="%d", delimiter=",")
    else:
        job_files.write_jsonlines(x, tmp_path / "input" / "test.jsonl")
    mdl = sdk.model(sess, image, sdk.LOCAL_ROLE, model_data)
    sdk.transform(
        mdl,
        job_files.uri(str(tmp_path / "input")),
        job_files.uri(str(tmp_path / "output")),
        sdk.local_instance_type(),
        content_type=content_type,
    )
    labels = job_files.read_transform_output(tmp_path / "output")
    assert len(labels) == len(y)
    assert np.mean(np.array(labels) == y) > 0.85
    assert running_containers(image) == []
