"""The image through the SageMaker Python SDK v2 (Estimator, Model, Transformer), the SDK the
design started from, kept beside the v3 launchers (local_test/sdk.py) and tested in an
environment of its own (`make venv-sdk-v2`). One set of functions for local mode and the cloud;
`mode` picks the session and the instances, nothing else differs:
    local   LocalSession, file:// channels and outputs, instance type local (local_gpu where a
            GPU is present), the image as built here, a placeholder role.
    cloud   a SageMaker session in your account, s3:// channels and outputs, ml.* instances,
            the image pushed to ECR (`make push`), your SageMaker execution role.
"""

import logging
import os
import time

from container.devices import has_gpu
from container.training.metrics import METRIC_DEFINITIONS, OBJECTIVE_METRIC
from local_test.job_files import channel_uris, png

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
# Local mode runs `docker info` before every request and logs a warning each time.
logging.getLogger("sagemaker.local.utils").setLevel(logging.ERROR)
import sagemaker
from sagemaker.deserializers import JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.model import Model
from sagemaker.predictor import Predictor
from sagemaker.pytorch import PyTorch
from sagemaker.serializers import IdentitySerializer, JSONSerializer, NumpySerializer
from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

LOCAL_ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"  # local mode never uses it
LOCAL_IMAGE = "sagemaker-mnist:latest"
LOCAL_CODE_LOCATION = "s3://local-mode/code"  # never reached in local mode
CLOUD_TRAINING_INSTANCE = "ml.g5.xlarge"
CLOUD_SERVING_INSTANCE = "ml.c6i.large"
# The SDK's defaults, as its config file would set them: no telemetry.
SDK_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
# The original project's tuning ranges.
TUNING_RANGES = {"lr": ContinuousParameter(0.001, 0.1), "hidden_channels": IntegerParameter(2, 32)}


def local_instance_type():
    return "local_gpu" if has_gpu() else "local"


def session(mode, region=None, boto_session=None, **clients):
    """A LocalSession (local) or Session (cloud), both with SDK telemetry off."""
    import boto3

    boto_session = boto_session or boto3.Session(
        region_name=region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    )
    if mode == "local":
        from sagemaker.local import LocalSession

        local = LocalSession(boto_session=boto_session, sagemaker_config=SDK_CONFIG)
        local.config = {"local": {"local_code": True}}
        return local
    return sagemaker.Session(boto_session=boto_session, sagemaker_config=SDK_CONFIG, **clients)


def channels(data):
    return channel_uris(data)


def estimator(
    sess,
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
    dependencies=None,
    distribution=None,
):
    """The training job; in the cloud with spot instances and a checkpoint location. With
    ``entry_point``, the user's own script in ``source_dir`` (script mode); a ``distribution``
    takes the PyTorch estimator, which is where the SDK accepts one."""
    extra = {}
    if spot:
        extra = {"use_spot_instances": True, "max_wait": 2 * max_run_s}
    if entry_point:
        extra.update(entry_point=entry_point, source_dir=source_dir, dependencies=dependencies)
    if distribution:
        extra["distribution"] = distribution
    return (PyTorch if distribution else Estimator)(
        image_uri=image_uri,
        role=role,
        instance_count=instance_count,
        instance_type=instance_type,
        hyperparameters=hyperparameters or {},
        output_path=output_path,
        sagemaker_session=sess,
        metric_definitions=METRIC_DEFINITIONS,
        max_run=max_run_s,
        checkpoint_s3_uri=checkpoint_s3_uri,
        base_job_name="mnist",
        disable_profiler=True,  # the profiler and debugger hooks are for AWS's own images
        debugger_hook_config=False,
        **extra,
    )


def tuner(est, max_jobs=10, max_parallel_jobs=2):
    """Hyperparameter tuning over the original project's ranges, on the shared metrics."""
    return HyperparameterTuner(
        est,
        objective_metric_name=OBJECTIVE_METRIC,
        hyperparameter_ranges=TUNING_RANGES,
        metric_definitions=METRIC_DEFINITIONS,
        objective_type="Maximize",
        max_jobs=max_jobs,
        max_parallel_jobs=max_parallel_jobs,
        base_tuning_job_name="mnist",
    )


def model(sess, image_uri, role, model_data, entry_point=None, source_dir=None):
    """The model to deploy; with ``entry_point``, the user's own inference code in
    ``source_dir``, which the SDK packs into model.tar.gz's code/ folder."""
    return Model(
        image_uri=image_uri,
        model_data=model_data,
        role=role,
        sagemaker_session=sess,
        predictor_cls=Predictor,
        name=f"mnist-{int(time.time() * 1000)}",
        entry_point=entry_point,
        source_dir=source_dir,
        # Local mode packs the code next to the file:// model and uploads nothing, but the SDK
        # still asks STS for the default bucket unless it is given one.
        code_location=LOCAL_CODE_LOCATION if getattr(sess, "local_mode", False) else None,
    )


def multi_data_model(sess, image_uri, role, model_data_prefix):
    """A multi-model endpoint's model: every model.tar.gz under the s3:// ``model_data_prefix``
    is served by one endpoint, loaded on its first request (TargetModel: its key under the
    prefix). SDK local mode does not run these; `make local-mme` runs the image directly."""
    from sagemaker.multidatamodel import MultiDataModel

    return MultiDataModel(
        name=f"mnist-mme-{int(time.time() * 1000)}",
        model_data_prefix=model_data_prefix,
        image_uri=image_uri,
        role=role,
        sagemaker_session=sess,
        predictor_cls=Predictor,
    )


SERIALIZERS = {
    "json": JSONSerializer(),
    "npy": NumpySerializer(),
    "png": IdentitySerializer(content_type="image/png"),
}


def predict(predictor, images, kind, target_model=None):
    """Labels of ``images`` (uint8, N×28×28) sent the way ``kind`` says, and seconds taken.
    PNG carries one image a request; JSON and npy send them all in one. ``target_model``: the
    model of a multi-model endpoint that answers."""
    predictor.serializer = SERIALIZERS[kind]
    predictor.deserializer = JSONDeserializer()
    started = time.perf_counter()
    if kind == "png":
        answers = [
            predictor.predict(png(image), target_model=target_model)["predictions"][0]
            for image in images
        ]
    else:
        body = images.tolist() if kind == "json" else images
        answers = predictor.predict(body, target_model=target_model)["predictions"]
    return [a["label"] for a in answers], time.perf_counter() - started


def transform(mdl, input_uri, output_uri, instance_type, content_type="application/jsonlines"):
    """Batch transform, one image a line (SplitType=Line), answers as JSON lines."""
    transformer = mdl.transformer(
        instance_count=1,
        instance_type=instance_type,
        output_path=output_uri,
        accept="application/jsonlines",
        strategy="MultiRecord",
        assemble_with="Line",
        max_payload=6,
    )
    transformer.transform(
        input_uri, content_type=content_type, split_type="Line", wait=True, logs=False
    )
    return transformer
