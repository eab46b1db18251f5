"""The image through the SageMaker Python SDK v3, the one `pip install sagemaker` gives:
ModelTrainer trains, ModelBuilder deploys. One set of functions for local container mode and
the cloud; `mode` picks the session, the instances and where the model lies:
    local   the image as built here, local folders as channels, instance type local_cpu
            (local_gpu where a GPU is present), a placeholder role, models under `work`.
    cloud   the image pushed to ECR (`make push`), s3:// channels and outputs, ml.* instances,
            your SageMaker execution role.
What v3 cannot do in local mode (batch transform, tuning, multi-model endpoints) is in
docs/sdk.md; local_test/sdk_v2.py does the same jobs with v2.
"""

import contextlib
import json
import os
import shutil
import tarfile
import time
import urllib.parse

import numpy as np

from container.devices import has_gpu
from container.training.metrics import METRIC_DEFINITIONS, OBJECTIVE_METRIC
from local_test.job_files import CHANNELS, png

# sagemaker.serve makes a boto3 client when it is imported, which needs a region.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
LOCAL_ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"  # local mode never uses it
LOCAL_IMAGE = "sagemaker-mnist:latest"
CLOUD_TRAINING_INSTANCE = "ml.g5.xlarge"
CLOUD_SERVING_INSTANCE = "ml.c6i.large"
# v3's local serving publishes the container on this host port, whatever is there.
LOCAL_SERVING_PORT = 8080
CONTENT_TYPES = {"json": "application/json", "npy": "application/x-npy", "png": "image/png"}
# The SDK's defaults, as its config file would set them: no telemetry.
SDK_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


def local_instance_type():
    return "local_gpu" if has_gpu() else "local_cpu"


def session(mode, region=None, boto_session=None):
    """A v3 Session in ``region`` (else AWS_DEFAULT_REGION, else us-east-1), telemetry off. Local
    mode asks AWS nothing; it needs no credentials."""
    import boto3
    from sagemaker.core.helper.session_helper import Session

    boto_session = boto_session or boto3.Session(
        region_name=region or os.environ["AWS_DEFAULT_REGION"]
    )
    if mode == "local":
        # ModelBuilder checks the role's IAM policies before a local deploy too.
        os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
    return Session(boto_session=boto_session, sagemaker_config=SDK_CONFIG)


def channels(data):
    """The training and testing channels under ``data`` (a folder or an s3:// prefix)."""
    from sagemaker.core.training.configs import InputData

    base = data.rstrip("/")
    sources = {
        name: f"{base}/{name}" if base.startswith("s3://") else os.path.abspath(f"{base}/{name}")
        for name in CHANNELS
    }
    return [InputData(channel_name=name, data_source=source) for name, source in sources.items()]


def trainer(
    sess,
    mode,
    image_uri,
    role,
    instance_type,
    instance_count=1,
    hyperparameters=None,
    output_path=None,
    checkpoint_s3_uri=None,
    spot=False,
    max_run_s=3600,
    entry_point=None,
    source_dir=None,
    requirements=None,
    distribution=None,
    work=None,
    environment=None,
):
    """The training job, with ``environment`` added to its containers' (MLFLOW_TRACKING_URI,
    say). With ``entry_point``, the user's script in ``source_dir`` (v3 runs it
    with its own driver, under torchrun with ``distribution="torchrun"``); without, the image's
    built-in trainer. Local jobs write under ``work``; cloud ones to ``output_path``, with spot
    instances and checkpoints when asked."""
    from sagemaker.core.shapes import MetricDefinition
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        OutputDataConfig,
        SourceCode,
        StoppingCondition,
    )
    from sagemaker.train import ModelTrainer
    from sagemaker.train.distributed import Torchrun
    from sagemaker.train.model_trainer import Mode

    local = mode == "local"
    extra = {}
    if entry_point:
        extra["source_code"] = SourceCode(
            source_dir=source_dir, entry_script=entry_point, requirements=requirements
        )
        if distribution == "torchrun":
            extra["distributed"] = Torchrun()
    elif distribution:
        raise ValueError("a distribution applies to your own script (entry_point)")
    if local:
        os.makedirs(work, exist_ok=True)
        extra.update(training_mode=Mode.LOCAL_CONTAINER, local_container_root=work)
    else:
        extra["stopping_condition"] = StoppingCondition(
            max_runtime_in_seconds=max_run_s,
            **({"max_wait_time_in_seconds": 2 * max_run_s} if spot else {}),
        )
        if output_path:
            extra["output_data_config"] = OutputDataConfig(s3_output_path=output_path)
        if checkpoint_s3_uri:
            extra["checkpoint_config"] = CheckpointConfig(s3_uri=checkpoint_s3_uri)
    model_trainer = ModelTrainer(
        sagemaker_session=sess,
        training_image=image_uri,
        role=role,
        base_job_name="mnist",
        compute=Compute(
            instance_type=instance_type,
            instance_count=instance_count,
            **({"enable_managed_spot_training": True} if spot and not local else {}),
        ),
        hyperparameters={k: str(v) for k, v in (hyperparameters or {}).items()},
        environment=dict(environment or {}),
        **extra,
    )
    return model_trainer.with_metric_definitions(
        [MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in METRIC_DEFINITIONS]
    )


def model_data(model_trainer):
    """Where the last job's model.tar.gz is: a local path, or its s3:// URI."""
    if model_trainer.training_mode.name == "LOCAL_CONTAINER":
        root = model_trainer.local_container_root
        return os.path.join(root, "compressed_artifacts", "model.tar.gz")
    return model_trainer._latest_training_job.model_artifacts.s3_model_artifacts


def tuner(model_trainer, max_jobs=10, max_parallel_jobs=2):
    """Hyperparameter tuning over the original project's ranges, on the shared metrics (cloud
    only: v3 has no local tuning)."""
    from sagemaker.core.parameter import ContinuousParameter, IntegerParameter
    from sagemaker.train.tuner import HyperparameterTuner

    return HyperparameterTuner(
        model_trainer,
        objective_metric_name=OBJECTIVE_METRIC,
        hyperparameter_ranges={
            "lr": ContinuousParameter(0.001, 0.1),
            "hidden_channels": IntegerParameter(2, 32),
        },
        metric_definitions=METRIC_DEFINITIONS,
        objective_type="Maximize",
        max_jobs=max_jobs,
        max_parallel_jobs=max_parallel_jobs,
        base_tuning_job_name="mnist",
    )


def local_model_folder(model_tar, folder, entry_point=None, source_dir=None):
    """``folder`` laid out as v3's local MMS serving mounts it: the model's files in code/
    (which becomes /opt/ml/model), the user's code folder in code/code/. v3 names the module
    inference.py there, whatever the caller says."""
    target = os.path.join(folder, "code")
    os.makedirs(target)
    with tarfile.open(urllib.parse.urlparse(model_tar).path) as tar:
        tar.extractall(target, filter="data")
    if entry_point:
        if os.path.basename(entry_point) != "inference.py":
            raise ValueError(
                f"SDK v3's local serving runs code/inference.py only; rename {entry_point} "
                f"to inference.py (in the cloud any name works)"
            )
        shutil.copytree(source_dir, os.path.join(target, "code"), dirs_exist_ok=True)
    return folder


def builder(sess, mode, image_uri, role, model, entry_point=None, source_dir=None, work=None):
    """ModelBuilder on this image with multi-model-server: ``model`` is a model.tar.gz (local
    path or s3://). Locally it serves a folder made from it under ``work``; in the cloud the
    archive, with the user's code in ``source_dir`` packed in when there is some."""
    from sagemaker.serve.builder.schema_builder import SchemaBuilder
    from sagemaker.serve.mode.function_pointers import Mode
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.serve.utils.types import ModelServer

    # What v3 sends to check a local endpoint is up, and how it reads the answer: one blank
    # image as JSON, the JSON answer.
    schema = SchemaBuilder(
        sample_input=np.zeros((1, 28, 28), np.uint8).tolist(),
        sample_output={"predictions": [{"label": 0}]},
    )
    common = dict(
        image_uri=image_uri,
        model_server=ModelServer.MMS,
        schema_builder=schema,
        role_arn=role,
        sagemaker_session=sess,
    )
    if mode == "local":
        folder = local_model_folder(
            model, os.path.join(work, f"model-{int(time.time() * 1000)}"), entry_point, source_dir
        )
        # s3_model_data_url: a placeholder that stops the SDK asking STS for a default bucket.
        return ModelBuilder(
            model_path=folder,
            mode=Mode.LOCAL_CONTAINER,
            s3_model_data_url="s3://local-mode/model/",
            **common,
        )
    extra = {}
    if entry_point:
        from sagemaker.core.training.configs import SourceCode

        extra["source_code"] = SourceCode(source_dir=source_dir, entry_script=entry_point)
        extra["env_vars"] = {"SAGEMAKER_PROGRAM": os.path.basename(entry_point)}
    # s3_model_data_url: the archive itself, so that the SDK does not make a default bucket.
    return ModelBuilder(
        model_path=model,
        s3_model_data_url=model,
        mode=Mode.SAGEMAKER_ENDPOINT,
        **common,
        **extra,
    )


def transform_session(sess, mode):
    """The session that runs batch transform: v3's local session (docker compose), or
    ``sess``."""
    if mode != "local":
        return sess
    from sagemaker.core.local.local_session import LocalSession

    local = LocalSession(boto_session=sess.boto_session)
    local.config = {"local": {"local_code": True}}
    return local


def create_model(sess, image_uri, role, model, name=None, environment=None):
    """A SageMaker model of this image on the archive ``model`` (file:// or s3://); its name."""
    name = name or f"mnist-{int(time.time() * 1000)}"
    sess.sagemaker_client.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": image_uri,
            "ModelDataUrl": model if "://" in model else "file://" + os.path.abspath(model),
            "Environment": environment or {},
        },
        ExecutionRoleArn=role,
    )
    return name


def transform(
    sess,
    model_name,
    input_uri,
    output_uri,
    instance_type,
    content_type="application/jsonlines",
    wait=True,
):
    """Batch transform of every file under ``input_uri``, one image a line (SplitType=Line),
    answers as JSON lines in ``output_uri``."""
    from sagemaker.core.transformer import Transformer

    transformer = Transformer(
        model_name=model_name,
        instance_count=1,
        instance_type=instance_type,
        strategy="MultiRecord",
        assemble_with="Line",
        output_path=output_uri,
        accept="application/jsonlines",
        max_payload=6,
        # Given, so that the SDK does not ask AWS for the model's image to name the job.
        base_transform_job_name="mnist",
        sagemaker_session=sess,
    )
    transformer.transform(
        input_uri, content_type=content_type, split_type="Line", wait=wait, logs=False
    )
    return transformer


def multi_model_endpoint(sess, image_uri, role, model_data_prefix, instance_type, wait=True):
    """A multi-model endpoint serving every model.tar.gz under the s3:// ``model_data_prefix``
    (cloud only: no SDK's local mode runs them; `make local-mme` runs the image directly); the
    endpoint's name, once it is in service."""
    name = f"mnist-mme-{int(time.time() * 1000)}"
    client = sess.sagemaker_client
    client.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": image_uri,
            "Mode": "MultiModel",
            "ModelDataUrl": model_data_prefix,
        },
        ExecutionRoleArn=role,
    )
    client.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "all",
                "ModelName": name,
                "InstanceType": instance_type,
                "InitialInstanceCount": 1,
            }
        ],
    )
    client.create_endpoint(EndpointName=name, EndpointConfigName=name)
    if wait:
        client.get_waiter("endpoint_in_service").wait(EndpointName=name)
    return name


def invoke_target(sess, endpoint_name, target_model, body, content_type):
    """The JSON answer of ``target_model`` (its key under the prefix) on a multi-model
    endpoint."""
    answer = sess.sagemaker_runtime_client.invoke_endpoint(
        EndpointName=endpoint_name,
        TargetModel=target_model,
        Body=body,
        ContentType=content_type,
        Accept="application/json",
    )
    return json.loads(answer["Body"].read())


@contextlib.contextmanager
def local_images_first():
    """v3's local serving pulls the image before every deploy, and fails for an image that is
    only on this machine (as `make build` leaves it): within this block an image present
    locally is used as it is."""
    from sagemaker.serve.mode import local_container_mode

    import docker

    mode = local_container_mode.LocalContainerMode
    pull = mode._pull_image

    def pull_unless_present(self, image):
        client = docker.from_env()
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            return pull(self, image)
        self.client = client
        return None

    mode._pull_image = pull_unless_present
    try:
        yield
    finally:
        mode._pull_image = pull


def deploy(model_builder, mode, instance_type=None, wait=True):
    """The endpoint: a local container on port LOCAL_SERVING_PORT, or a real-time endpoint
    (in service, unless not ``wait``)."""
    model_builder.build()
    if mode == "local":
        with local_images_first():
            return model_builder.deploy()
    return model_builder.deploy(
        endpoint_name=f"mnist-{int(time.time() * 1000)}",
        initial_instance_count=1,
        instance_type=instance_type,
        wait=wait,
    )


def invoke(endpoint, body, content_type, accept="application/json"):
    """The JSON answer of one request to ``endpoint`` (local or cloud) with ``body`` bytes."""
    from sagemaker.core.serializers import IdentitySerializer

    if hasattr(endpoint, "local_container_mode_obj"):
        # The local endpoint serializes the body itself and wraps the answer in a list.
        endpoint.serializer = IdentitySerializer(content_type=content_type)
        answer = endpoint.invoke(body=body, content_type=content_type, accept=accept)
        return json.loads(answer.body.read())[0]
    answer = endpoint.invoke(body=body, content_type=content_type, accept=accept).body
    return json.loads(answer.read() if hasattr(answer, "read") else answer)


def predict(endpoint, images, kind):
    """Labels of ``images`` (uint8, N×28×28) sent the way ``kind`` says, and seconds taken.
    PNG carries one image a request; JSON and npy send them all in one."""
    from local_test.server import npy

    started = time.perf_counter()
    if kind == "png":
        answers = [
            invoke(endpoint, png(image), CONTENT_TYPES["png"])["predictions"][0] for image in images
        ]
    else:
        body = json.dumps(images.tolist()).encode() if kind == "json" else npy(images)
        answers = invoke(endpoint, body, CONTENT_TYPES[kind])["predictions"]
    return [a["label"] for a in answers], time.perf_counter() - started


def delete(endpoint, timeout_s=60):
    """Stops a local endpoint's container, or deletes a cloud endpoint. The local endpoint's
    own delete leaves its container running, holding port LOCAL_SERVING_PORT."""
    local = getattr(endpoint, "local_container_mode_obj", None)
    container = getattr(local, "container", None)
    if container is not None:
        import docker.errors

        local.destroy_server()  # kills it; it was started to remove itself
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                container.reload()
            except docker.errors.NotFound:
                break
            time.sleep(0.2)
    endpoint.delete()
