"""What local_test/sdk.py (SDK v3) sends to AWS in cloud mode. Every call goes through botocore,
which checks it against the service's model; an event hook then answers it instead of AWS, so
nothing here leaves the machine."""

import datetime
import io
import json
import types

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody

from container.training.metrics import METRIC_DEFINITIONS, OBJECTIVE_METRIC
from local_test import sdk

REGION = "eu-west-1"
ACCOUNT = "123456789012"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sagemaker-mnist:abc"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecution"
NOW = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC)
ANSWER = {"predictions": [{"label": 3}]}


class Aws:
    """A cloud-mode v3 session whose every AWS call is checked by botocore, kept by operation
    (the last of each), and answered here."""

    def __init__(self):
        self.boto = boto3.Session(
            region_name=REGION, aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="example"
        )
        self.requests, self.order = {}, []
        self.boto.events.register("before-parameter-build", self.record)
        self.boto.events.register("before-call", self.answer)
        self.session = sdk.session("cloud", boto_session=self.boto)

    def record(self, model, params, **kwargs):
        self.requests[model.name] = dict(params)
        self.order.append(model.name)

    def answer(self, model, **kwargs):
        name, params = model.name, self.requests[model.name]
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{name.lower()}/mnist"
        if name.startswith("Create"):
            body = {name.removeprefix("Create") + "Arn": arn}
        elif name == "DescribeTrainingJob":
            body = dict(
                self.requests["CreateTrainingJob"],
                TrainingJobArn=arn,
                TrainingJobStatus="InProgress",
                SecondaryStatus="Starting",
                CreationTime=NOW,
            )
        elif name == "DescribeHyperParameterTuningJob":
            body = dict(
                self.requests["CreateHyperParameterTuningJob"],
                HyperParameterTuningJobArn=arn,
                HyperParameterTuningJobStatus="InProgress",
                CreationTime=NOW,
                TrainingJobStatusCounters={},
                ObjectiveStatusCounters={},
            )
        elif name == "DescribeModel":
            body = {"ModelName": params["ModelName"], "ModelArn": arn, "CreationTime": NOW}
        elif name == "DescribeEndpoint":
            body = {
                "EndpointName": params["EndpointName"],
                "EndpointArn": arn,
                "EndpointConfigName": params["EndpointName"],
                "EndpointStatus": "InService",
                "CreationTime": NOW,
                "LastModifiedTime": NOW,
            }
        elif name == "InvokeEndpoint":
            data = json.dumps(ANSWER).encode()
            body = {"Body": StreamingBody(io.BytesIO(data), len(data))}
        else:
            body = {}
        return types.SimpleNamespace(status_code=200, headers={}), body


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")  # no IAM simulation in these tests
    return Aws()


def cloud_trainer(aws, count=2, **kwargs):
    return sdk.trainer(
        aws.session,
        "cloud",
        IMAGE,
        ROLE,
        sdk.CLOUD_TRAINING_INSTANCE,
        count,
        {"epochs": 3, "lr": 0.05},
        output_path="s3://bucket/models",
        **kwargs,
    )


def test_cloud_training_job_is_spot_with_checkpoints_and_the_shared_metrics(aws):
    model_trainer = cloud_trainer(aws, checkpoint_s3_uri="s3://bucket/checkpoints", spot=True)
    model_trainer.train(sdk.channels("s3://bucket/mnist"), wait=False, logs=False)
    request = aws.requests["CreateTrainingJob"]
    algorithm = request["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == IMAGE
    assert algorithm["MetricDefinitions"] == METRIC_DEFINITIONS
    assert "ContainerEntrypoint" not in algorithm  # the image's own `train`, no SDK driver
    assert request["HyperParameters"] == {"epochs": "3", "lr": "0.05"}
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["EnableManagedSpotTraining"] is True
    stopping = request["StoppingCondition"]
    assert stopping["MaxWaitTimeInSeconds"] >= stopping["MaxRuntimeInSeconds"]
    assert request["CheckpointConfig"]["S3Uri"] == "s3://bucket/checkpoints"
    assert request["OutputDataConfig"]["S3OutputPath"] == "s3://bucket/models"
    assert {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in request["InputDataConfig"]
    } == {"training": "s3://bucket/mnist/training", "testing": "s3://bucket/mnist/testing"}


def test_cloud_tuning_job_uses_the_original_ranges_and_objective(aws):
    sdk.tuner(cloud_trainer(aws, count=1)).tune(
        inputs=sdk.channels("s3://bucket/mnist"), wait=False
    )
    config = aws.requests["CreateHyperParameterTuningJob"]
    objective = config["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective == {"Type": "Maximize", "MetricName": OBJECTIVE_METRIC}
    ranges = config["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"][0]["Name"] == "lr"
    assert ranges["IntegerParameterRanges"][0]["Name"] == "hidden_channels"
    assert (
        ranges["IntegerParameterRanges"][0]["MinValue"],
        ranges["IntegerParameterRanges"][0]["MaxValue"],
    ) == ("2", "32")
    definition = config["TrainingJobDefinition"]
    assert definition["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert definition["StaticHyperParameters"]["epochs"] == "3"


def test_cloud_deploy_invoke_and_batch_transform_requests(aws):
    model_data = "s3://bucket/models/mnist-1/output/model.tar.gz"
    builder = sdk.builder(aws.session, "cloud", IMAGE, ROLE, model_data)
    endpoint = sdk.deploy(builder, "cloud", sdk.CLOUD_SERVING_INSTANCE, wait=False)
    labels, _ = sdk.predict(endpoint, np.zeros((2, 28, 28), np.uint8), "npy")
    assert labels == [3]
    container = aws.requests["CreateModel"]["PrimaryContainer"]
    assert (container["Image"], container["ModelDataUrl"]) == (IMAGE, model_data)
    variant = aws.requests["CreateEndpointConfig"]["ProductionVariants"][0]
    assert variant["InstanceType"] == sdk.CLOUD_SERVING_INSTANCE
    invoke = aws.requests["InvokeEndpoint"]
    assert invoke["ContentType"] == "application/x-npy"
    assert invoke["EndpointName"] == aws.requests["CreateEndpoint"]["EndpointName"]

    name = sdk.create_model(aws.session, IMAGE, ROLE, model_data)
    sdk.transform(
        aws.session,
        name,
        "s3://bucket/mnist/test.jsonl",
        "s3://bucket/predictions",
        "ml.c6i.large",
        wait=False,
    )
    transform = aws.requests["CreateTransformJob"]
    assert transform["ModelName"] == name
    assert transform["TransformInput"]["SplitType"] == "Line"
    assert transform["TransformInput"]["ContentType"] == "application/jsonlines"
    assert transform["TransformOutput"]["AssembleWith"] == "Line"
    assert transform["BatchStrategy"] == "MultiRecord"


def test_cloud_multi_model_endpoint_and_an_invoke_of_one_of_its_models(aws):
    prefix = "s3://bucket/mme/"
    name = sdk.multi_model_endpoint(aws.session, IMAGE, ROLE, prefix, "ml.c6i.large", wait=False)
    answer = sdk.invoke_target(aws.session, name, "w2.tar.gz", b"[]", "application/json")
    assert answer == ANSWER
    container = aws.requests["CreateModel"]["PrimaryContainer"]
    assert container == {"Image": IMAGE, "Mode": "MultiModel", "ModelDataUrl": prefix}
    assert aws.requests["InvokeEndpoint"]["TargetModel"] == "w2.tar.gz"
    assert aws.requests["CreateEndpoint"]["EndpointConfigName"] == name
