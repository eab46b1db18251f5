"""The image through the SageMaker Python SDK v3 (what `pip install sagemaker` gives) in local
container mode: ModelTrainer with the built-in trainer, with a user's script and under torchrun on
two instances; ModelBuilder deploying with and without the model's own inference.py; batch
transform through v3's local session."""

import os
import tarfile

import numpy as np
import pytest

from local_test import ROOT, sdk
from local_test.job_files import read_metrics, read_transform_output, uri, write_jsonlines
from tests.helpers import DATA_DIR

EXAMPLE = os.path.join(ROOT, "examples", "mnist_script")


@pytest.fixture(scope="module")
def sess():
    return sdk.session("local")


def train(sess, image, work, instances=1, hyperparameters=None, **script):
    model_trainer = sdk.trainer(
        sess,
        "local",
        image,
        sdk.LOCAL_ROLE,
        sdk.local_instance_type(),
        instances,
        hyperparameters or {},
        work=str(work),
        **script,
    )
    model_trainer.train(sdk.channels(DATA_DIR), wait=True, logs=False)
    model = sdk.model_data(model_trainer)
    with tarfile.open(model) as tar:
        assert "model.pth" in tar.getnames()
    return model, read_metrics(model)


@pytest.fixture(scope="module")
def built_in(sess, image, tmp_path_factory):
    """The image's own trainer, two epochs on all of MNIST, as a bare `docker run IMAGE`."""
    return train(sess, image, tmp_path_factory.mktemp("built_in"), hyperparameters={"epochs": 2})


@pytest.fixture(scope="module")
def script(sess, image, tmp_path_factory):
    """The example training script, one epoch, run by v3's own driver."""
    return train(
        sess,
        image,
        tmp_path_factory.mktemp("script"),
        hyperparameters={"epochs": 1},
        entry_point="train.py",
        source_dir=EXAMPLE,
    )


def test_model_trainer_runs_the_built_in_job_to_99_percent_in_two_epochs(built_in):
    _, metrics = built_in
    assert metrics["test_accuracy"] >= 99.0, metrics


def test_model_trainer_runs_your_script(script):
    _, metrics = script
    assert metrics["world_size"] == 1 and metrics["test_accuracy"] > 90, metrics


def test_model_trainer_runs_your_script_on_two_instances_under_torchrun(sess, image, tmp_path):
    _, metrics = train(
        sess,
        image,
        tmp_path,
        instances=2,
        hyperparameters={"epochs": 1},
        entry_point="train.py",
        source_dir=EXAMPLE,
        distribution="torchrun",
    )
    assert metrics["world_size"] == 2 and metrics["test_accuracy"] > 85, metrics


def deploy_and_check(sess, image, model, work, mnist, **code):
    builder = sdk.builder(sess, "local", image, sdk.LOCAL_ROLE, model, work=str(work), **code)
    endpoint = sdk.deploy(builder, "local")
    x, y = mnist["x_test"][:300], mnist["y_test"][:300]
    try:
        for kind in ("json", "npy"):
            labels, _ = sdk.predict(endpoint, x, kind)
            assert np.mean(np.array(labels) == y) > 0.9, kind
        labels, _ = sdk.predict(endpoint, x[:3], "png")
        assert len(labels) == 3
    finally:
        sdk.delete(endpoint)


def test_model_builder_deploys_the_image_and_predicts_json_and_npy(
    sess, image, built_in, tmp_path, mnist
):
    deploy_and_check(sess, image, built_in[0], tmp_path, mnist)


def test_model_builder_serves_the_models_own_inference_code(sess, image, script, tmp_path, mnist):
    deploy_and_check(
        sess, image, script[0], tmp_path, mnist, entry_point="inference.py", source_dir=EXAMPLE
    )
    # v3's local serving runs code/inference.py alone: another name is refused with the reason.
    with pytest.raises(ValueError, match="inference.py"):
        sdk.builder(
            sess,
            "local",
            image,
            sdk.LOCAL_ROLE,
            script[0],
            entry_point="train.py",
            source_dir=EXAMPLE,
            work=str(tmp_path),
        )


def test_batch_transform_through_the_local_session(sess, image, built_in, tmp_path, mnist):
    x, y = mnist["x_test"][:500], mnist["y_test"][:500]
    (tmp_path / "input").mkdir()
    write_jsonlines(x, tmp_path / "input" / "test.jsonl")
    runner = sdk.transform_session(sess, "local")
    name = sdk.create_model(runner, image, sdk.LOCAL_ROLE, built_in[0])
    sdk.transform(
        runner, name, uri(str(tmp_path / "input")), uri(str(tmp_path / "output")), "local"
    )
    labels = read_transform_output(tmp_path / "output")
    assert len(labels) == len(y)
    assert np.mean(np.array(labels) == y) > 0.98
