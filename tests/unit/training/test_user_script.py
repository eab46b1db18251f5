"""Script mode through the real sagemaker-training toolkit (`python -m container train`) outside
Docker: the job's own script, where its code comes from, what it is given, and how it fails."""

import io
import json
import os
import re
import subprocess
import tarfile

import pytest
from sagemaker_training import errors, runner

from container.training.user_script import code_location, runner_type
from local_test import ROOT
from local_test.opt_ml import make_opt_ml, train_command
from tests.helpers import failed, read


def run_job(base, **environ):
    argv, env = train_command(base)
    env.pop("SM_CHECKPOINT_DIR", None)
    done = subprocess.run(
        argv,
        env={**env, **environ},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def code(folder, files):
    os.makedirs(folder, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    return str(folder)


RECORDER = """
import json, os, sys
with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "master": [os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]],
               "model_dir": os.environ["SM_MODEL_DIR"]}, f)
"""


def test_a_program_named_by_the_environment_gets_the_hyperparameters_as_flags(
    tiny_channel, tmp_path
):
    source = code(tmp_path / "src", {"recorder.py": RECORDER})
    base = make_opt_ml(tmp_path / "opt_ml", {"lr": 0.5, "name": "x"}, {"training": tiny_channel})
    status, log = run_job(
        base, SAGEMAKER_PROGRAM="recorder.py", SAGEMAKER_SUBMIT_DIRECTORY=f"file://{source}"
    )
    assert status == 0, log
    seen = json.loads(read(os.path.join(base, "model", "seen.json")))
    assert seen["argv"] == ["--lr", "0.5", "--name", "x"]
    assert seen["master"] == ["localhost", "7777"]
    assert os.path.exists(os.path.join(base, "output", "success"))


def test_a_script_that_raises_fails_the_job_with_its_own_error(tiny_channel, tmp_path):
    source = code(tmp_path / "src", {"train.py": "raise ValueError('the users own error')\n"})
    hyperparameters = {"sagemaker_program": "train.py", "sagemaker_submit_directory": source}
    base = make_opt_ml(tmp_path / "opt_ml", hyperparameters, {"training": tiny_channel})
    status, log = run_job(base)
    reason = failed(base, status)
    # The toolkit reads the script's stderr in chunks, and may cut a line where a chunk ends.
    assert "ExecuteUserScriptError" in reason, log
    assert re.search(r"ValueError:?theusersownerror", "".join(reason.split())), reason


def test_the_code_channel_stands_in_for_s3_under_network_isolation(tiny_channel, tmp_path):
    """A shell script, from sourcedir.tar.gz in the `code` channel: the job's S3 location for
    the code is out of reach."""
    channel = tmp_path / "code_channel"
    channel.mkdir()
    script = b'#!/bin/sh\necho "$@" > "$SM_MODEL_DIR/shell.txt"\n'
    with tarfile.open(channel / "sourcedir.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("run.sh")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    hyperparameters = {
        "sagemaker_program": "run.sh",
        "epochs": 3,
        "sagemaker_submit_directory": "s3://bucket/job/source/sourcedir.tar.gz",
    }
    base = make_opt_ml(
        tmp_path / "opt_ml", hyperparameters, {"training": tiny_channel, "code": str(channel)}
    )
    status, log = run_job(base)
    assert status == 0, log
    assert read(os.path.join(base, "model", "shell.txt")).strip() == "--epochs 3"


def test_a_distribution_that_needs_aws_binaries_fails_at_once_saying_what_to_use(
    tiny_channel, tmp_path
):
    source = code(tmp_path / "src", {"train.py": "print('never runs')\n"})
    hyperparameters = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": source,
        "sagemaker_distributed_dataparallel_enabled": "true",
    }
    base = make_opt_ml(tmp_path / "opt_ml", hyperparameters, {"training": tiny_channel})
    status, log = run_job(base)
    reason = failed(base, status)
    assert "smdistributed dataparallel" in reason and "torch_distributed" in reason, log
    assert "never runs" not in log


def test_the_reserved_hyperparameters_never_reach_the_built_in_trainer(tiny_channel, tmp_path):
    hyperparameters = {
        "epochs": 1,
        "hidden_channels": 4,
        "batch_size": 64,
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": "mnist-1",
        "sagemaker_region": "eu-west-1",
        "sagemaker_instance_type": "local",
    }
    base = make_opt_ml(tmp_path, hyperparameters, {"training": tiny_channel})
    status, log = run_job(base)
    assert status == 0, log
    assert os.path.exists(os.path.join(base, "model", "model.pt"))


@pytest.mark.parametrize(
    "parameters, expected",
    [
        ({}, runner.ProcessRunnerType),
        ({"sagemaker_torch_distributed_enabled": True}, runner.TorchDistributedRunnerType),
        ({"sagemaker_torch_distributed_enabled": "false"}, runner.ProcessRunnerType),
        ({"sagemaker_mpi_enabled": False}, runner.ProcessRunnerType),
    ],
)
def test_the_runner_follows_the_distribution(parameters, expected):
    assert runner_type(parameters) is expected


@pytest.mark.parametrize(
    "parameters, named",
    [
        ({"sagemaker_mpi_enabled": True}, "mpi"),
        ({"sagemaker_pytorch_ddp_enabled": "true"}, "pytorchddp"),
        ({"sagemaker_mpi_enabled": True, "mp_parameters": {"partitions": 2}}, "modelparallel"),
    ],
)
def test_distributions_that_need_aws_binaries_are_refused(parameters, named):
    with pytest.raises(errors.ClientError, match=named):
        runner_type(parameters)


def test_where_the_code_comes_from(tmp_path, monkeypatch):
    monkeypatch.delenv("SAGEMAKER_SUBMIT_DIRECTORY", raising=False)
    folder = str(tmp_path)
    assert code_location(f"file://{folder}", {}) == folder
    assert code_location("s3://b/k/sourcedir.tar.gz", {}) == "s3://b/k/sourcedir.tar.gz"
    assert code_location("s3://b/k/sourcedir.tar.gz", {"code": folder}) == folder
    (tmp_path / "sourcedir.tar.gz").write_bytes(b"")
    assert code_location("", {"code": folder}) == os.path.join(folder, "sourcedir.tar.gz")
    monkeypatch.setenv("SAGEMAKER_SUBMIT_DIRECTORY", "/somewhere/else")
    assert code_location("", {"code": folder}) == os.path.join(folder, "sourcedir.tar.gz")
