"""A user's own training script (SageMaker script mode), run as AWS's PyTorch images run it.

The job names the script (the ``sagemaker_program`` hyperparameter or SAGEMAKER_PROGRAM) and
where its code lies (``sagemaker_submit_directory`` or SAGEMAKER_SUBMIT_DIRECTORY: a folder, a
``file://`` URI, a tar or an S3 tar; else the ``code`` channel, else /opt/ml/code). The
toolkit's ``entry_point.run`` then installs the code's requirements.txt, exports the SM_*
variables, and runs the script with the hyperparameters as ``--name value``; a failure becomes
the job's failure file with the script's own error.
"""

import os

from sagemaker_training import entry_point, environment, errors, runner

# What AWS's PyTorch images set, and give torchrun: the first host and this port.
MASTER_PORT = "7777"
TORCH_DISTRIBUTED = "sagemaker_torch_distributed_enabled"
# Distributions that need AWS's own binaries (MPI, smddp, smp), which this image does not carry.
NEEDS_AWS_BINARIES = {
    "sagemaker_distributed_dataparallel_enabled": "smdistributed dataparallel (or pytorchddp)",
    "sagemaker_pytorch_ddp_enabled": "pytorchddp",
    "mp_parameters": "smdistributed modelparallel",
    "sagemaker_mpi_enabled": "mpi",
    "sagemaker_pytorch_xla_multi_worker_enabled": "pytorchxla",
    "sagemaker_parameter_server_enabled": "parameter_server",
}
INSTEAD = (
    'use distribution={"torch_distributed": {"enabled": True}} (torchrun over every host and '
    "GPU), or no distribution: every host then runs the script once, with MASTER_ADDR and "
    "MASTER_PORT set for init_process_group over env://"
)
CODE_CHANNEL = "code"
SOURCE_TAR = "sourcedir.tar.gz"


def program(env):
    """The script the job names, or None for the built-in trainer."""
    return env.user_entry_point or os.environ.get("SAGEMAKER_PROGRAM") or None


def _on(value):
    return str(value).strip().lower() in ("true", "1")


def runner_type(framework_parameters):
    """The toolkit's runner for the distribution the job asks for; a ClientError for one that
    needs binaries this image does not carry."""
    asked = [
        name
        for key, name in NEEDS_AWS_BINARIES.items()
        if key in framework_parameters
        and (key == "mp_parameters" or _on(framework_parameters[key]))
    ]
    if asked:
        raise errors.ClientError(
            f"distribution {asked[0]} needs AWS's own binaries, which this image does not "
            f"carry: {INSTEAD}"
        )
    if _on(framework_parameters.get(TORCH_DISTRIBUTED, False)):
        return runner.TorchDistributedRunnerType
    return runner.ProcessRunnerType


def code_location(submit_directory, channels):
    """Where the job's code is, as ``entry_point.run`` takes it: a folder, a tar or an S3 URI.
    With network isolation the code arrives as the ``code`` channel instead of from S3."""
    location = submit_directory or os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY") or ""
    location = location.removeprefix("file://")
    channel = channels.get(CODE_CHANNEL)
    if channel and (not location or location.startswith("s3://") or not os.path.exists(location)):
        tar = os.path.join(channel, SOURCE_TAR)
        return tar if os.path.exists(tar) else channel
    return location or environment.code_dir


def run(env):
    """Runs the job's script through the toolkit on this host."""
    hyperparameters = environment.read_hyperparameters()
    for folder in (env.model_dir, env.output_data_dir):  # as SageMaker makes them
        os.makedirs(folder, exist_ok=True)
    runner_kind = runner_type({**env.additional_framework_parameters, **hyperparameters})
    location = code_location(
        str(hyperparameters.get("sagemaker_submit_directory") or ""), env.channel_input_dirs
    )
    entry_point.run(
        uri=location,
        user_entry_point=program(env),
        args=env.to_cmd_args(),
        # The toolkit puts these in this process's environment, which its runners pass on.
        env_vars={
            **env.to_env_vars(),
            "MASTER_ADDR": env.master_hostname,
            "MASTER_PORT": MASTER_PORT,
        },
        capture_error=True,
        runner_type=runner_kind,
    )
