"""SageMaker script mode with SDK v2 local mode (Docker and docker-compose): the user's own
script instead of the built-in trainer, its requirements, PyTorch-style distributed launch across
containers, and the example script in the original project's shape."""

import json
import os
import shutil
import tarfile
import urllib.parse

import pytest

from local_test import ROOT, job_files
from local_test import sdk_v2 as sdk
from local_test.opt_ml import make_opt_ml
from tests.container.helpers import run_train, train_argv, unique, write_wheel
from tests.helpers import failed, read

SCRIPTS = os.path.join(os.path.dirname(__file__), "scripts")
EXAMPLE = {"entry_point": "train.py", "source_dir": os.path.join(ROOT, "examples", "mnist_script")}


@pytest.fixture(scope="module")
def sess():
    return sdk.session("local")


def fit(sess, image, tmp_path, channel, instances=1, hyperparameters=None, **script):
    """model.tar.gz of a local-mode job on ``channel`` (a training channel folder, or a dict of
    channel URIs)."""
    inputs = channel if isinstance(channel, dict) else {"training": job_files.uri(channel)}
    est = sdk.estimator(
        sess,
        image,
        sdk.LOCAL_ROLE,
        sdk.local_instance_type(),
        instances,
        hyperparameters or {},
        job_files.uri(str(tmp_path / "output")),
        **script,
    )
    est.fit(inputs, logs=True)
    return est.model_data


def fit_example(sess, image, tmp_path, epochs):
    """The example script trained on all of MNIST."""
    channels = sdk.channels(os.path.join(ROOT, "data"))
    return fit(sess, image, tmp_path, channels, hyperparameters={"epochs": epochs}, **EXAMPLE)


def read_member(model_data, name):
    with tarfile.open(urllib.parse.urlparse(model_data).path) as tar:
        if name not in tar.getnames():
            raise AssertionError(f"{name} not in model.tar.gz: {sorted(tar.getnames())}")
        return json.load(tar.extractfile(name))


def members(model_data):
    with tarfile.open(urllib.parse.urlparse(model_data).path) as tar:
        return sorted(tar.getnames())


def test_an_estimator_runs_the_users_script_with_its_requirements(
    sess, image, tiny_channel, tmp_path
):
    source = tmp_path / "source"
    shutil.copytree(os.path.join(SCRIPTS, "marker"), source)
    wheel = write_wheel(source, "shipped_marker", "1.2.3", 'VERSION = "1.2.3"\n')
    (source / "requirements.txt").write_text(f"./{wheel}\n")
    model_data = fit(
        sess,
        image,
        tmp_path,
        tiny_channel,
        hyperparameters={"greeting": "hello", "epochs": 1},
        entry_point="marker.py",
        source_dir=str(source),
    )
    marker = read_member(model_data, "marker.json")
    assert marker["shipped"] == "1.2.3"  # the wheel was installed and is importable
    assert marker["argv"] == ["--epochs", "1", "--greeting", "hello"]
    assert marker["hps"] == {"epochs": 1, "greeting": "hello"}
    assert marker["training"] == "/opt/ml/input/data/training"
    assert [host[:6] for host in marker["hosts"]] == ["algo-1"]  # local mode adds a suffix
    assert "model.pt" not in members(model_data)  # the built-in trainer did not run


@pytest.mark.parametrize("distribution", [None, "torch_distributed"])
def test_a_ddp_script_all_reduces_across_two_containers(
    sess, image, tiny_channel, tmp_path, distribution
):
    model_data = fit(
        sess,
        image,
        tmp_path,
        tiny_channel,
        instances=2,
        entry_point="allreduce.py",
        source_dir=os.path.join(SCRIPTS, "ddp"),
        distribution={"torch_distributed": {"enabled": True}} if distribution else None,
    )
    result = read_member(model_data, "allreduce.json")
    assert result["sum"] == 3.0 and result["world_size"] == 2  # ranks 0 and 1 added 1 and 2
    assert result["launcher"] == ("torchrun" if distribution else "process")
    if not distribution:
        assert result["master"][0].startswith("algo-1") and result["master"][1] == "7777"


def test_the_example_script_reaches_the_original_projects_accuracy(sess, image, tmp_path):
    model_data = fit_example(sess, image, tmp_path, epochs=2)
    metrics = read_member(model_data, "metrics.json")
    assert metrics["test_accuracy"] >= 96.5, metrics  # the original project's table: about 97
    assert "model.pth" in members(model_data)


def test_a_requirement_that_cannot_install_fails_the_job_with_pips_reason(
    image, tiny_channel, tmp_path
):
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print('never runs')\n")
    (code / "requirements.txt").write_text("./missing-0.1-py3-none-any.whl\n")
    hyperparameters = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": "/opt/ml/code",
    }
    base = make_opt_ml(
        tmp_path / "opt_ml",
        hyperparameters,
        {"training": tiny_channel},
        hosts=("algo-1",),
        copy=True,
    )
    shutil.copytree(code, os.path.join(base, "code"))
    status, log = run_train(image, base, unique("requirements"))
    reason = failed(base, status)
    # The toolkit reads pip's stderr in chunks, and may cut a line where a chunk ends.
    assert "InstallRequirementsError" in reason, log
    assert "missing-0.1-py3-none-any.whl" in "".join(reason.split()), reason
    assert "never runs" not in log


def test_docker_run_with_no_command_trains(image, tiny_channel, tmp_path):
    """The current SDK's local container mode starts the image without `train`."""
    import subprocess

    base = make_opt_ml(
        tmp_path,
        {"epochs": 1, "hidden_channels": 4, "batch_size": 64},
        {"training": tiny_channel},
        hosts=("algo-1",),
        copy=True,
    )
    argv = train_argv(image, base, unique("bare"))
    done = subprocess.run(argv[:-1], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads(read(os.path.join(base, "model", "metrics.json")))["test_accuracy"] > 80


def test_a_model_with_its_own_inference_code_deploys_and_predicts(sess, image, tmp_path, mnist):
    """Model(entry_point=..., source_dir=...) in local mode: the example script's model, served by
    its inference.py (model_fn, predict_fn) with the image's decoders and encoders, and a
    requirements.txt installed at start-up from a wheel shipped beside it."""
    model_data = fit_example(sess, image, tmp_path, epochs=1)

    source = tmp_path / "code"
    shutil.copytree(os.path.join(ROOT, "examples", "mnist_script"), source)
    wheel = write_wheel(source, "shipped_marker", "1.2.3", 'VERSION = "1.2.3"\n')
    (source / "requirements.txt").write_text(f"./{wheel}\n")
    with open(source / "inference.py", "a") as f:
        f.write("\nimport shipped_marker  # noqa: E402,F401 - installed from requirements.txt\n")
    predictor = sdk.model(
        sess, image, sdk.LOCAL_ROLE, model_data, "inference.py", str(source)
    ).deploy(initial_instance_count=1, instance_type=sdk.local_instance_type())
    try:
        x, y = mnist["x_test"][:200], mnist["y_test"][:200]
        for kind, count, share in (("json", 200, 0.9), ("npy", 200, 0.9), ("png", 5, 0.6)):
            labels, _ = sdk.predict(predictor, x[:count], kind)
            right = sum(a == b for a, b in zip(labels, y[:count], strict=True))
            assert right >= share * count, (kind, right)
    finally:
        predictor.delete_endpoint(delete_endpoint_config=True)
