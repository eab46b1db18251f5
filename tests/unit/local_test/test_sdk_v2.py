"""What local_test/sdk_v2.py (SDK v2) sends to AWS in cloud mode, checked against botocore's
service models with its Stubber: nothing here reaches AWS."""

import boto3
from botocore.stub import Stubber

from container.training.metrics import METRIC_DEFINITIONS, OBJECTIVE_METRIC
from local_test import sdk_v2 as sdk

REGION = "eu-west-1"
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/sagemaker-mnist:abc"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
ARN = f"arn:aws:sagemaker:{REGION}:123456789012:"


class Cloud:
    """A cloud-mode session whose SageMaker client is stubbed; requests kept by operation."""

    def __init__(self):
        boto = boto3.Session(
            region_name=REGION, aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="example"
        )
        self.client = boto.client("sagemaker")
        self.runtime = boto.client("sagemaker-runtime")
        self.requests = {}
        for client in (self.client, self.runtime):
            client.meta.events.register(
                "before-parameter-build",
                lambda params, model, **kwargs: self.requests.__setitem__(model.name, dict(params)),
            )
        self.stubbers = {self.client: Stubber(self.client), self.runtime: Stubber(self.runtime)}
        self.session = sdk.session(
            "cloud",
            boto_session=boto,
            sagemaker_client=self.client,
            sagemaker_runtime_client=self.runtime,
        )

    def expect(self, operation, response, client=None):
        self.stubbers[client or self.client].add_response(operation, response)

    def __enter__(self):
        for stubber in self.stubbers.values():
            stubber.activate()
        return self

    def __exit__(self, *exc):
        for stubber in self.stubbers.values():
            stubber.deactivate()
            if not exc[0]:
                stubber.assert_no_pending_responses()


def cloud_estimator(cloud, **kwargs):
    return sdk.estimator(
        cloud.session,
        IMAGE,
        ROLE,
        "ml.g5.xlarge",
        kwargs.pop("count", 2),
        {"epochs": 3, "lr": 0.05},
        "s3://bucket/models",
        checkpoint_s3_uri="s3://bucket/checkpoints",
        spot=True,
        **kwargs,
    )


def test_cloud_training_job_is_spot_with_checkpoints_and_the_shared_metrics():
    with Cloud() as cloud:
        cloud.expect("create_training_job", {"TrainingJobArn": ARN + "training-job/mnist"})
        cloud_estimator(cloud).fit(sdk.channels("s3://bucket/mnist"), wait=False)
    request = cloud.requests["CreateTrainingJob"]
    assert request["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    assert request["HyperParameters"] == {"epochs": "3", "lr": "0.05"}  # strings, as SageMaker
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["EnableManagedSpotTraining"] is True
    assert (
        request["StoppingCondition"]["MaxWaitTimeInSeconds"]
        >= request["StoppingCondition"]["MaxRuntimeInSeconds"]
    )
    assert request["CheckpointConfig"]["S3Uri"] == "s3://bucket/checkpoints"
    assert {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in request["InputDataConfig"]
    } == {"training": "s3://bucket/mnist/training", "testing": "s3://bucket/mnist/testing"}
    assert "DebugHookConfig" not in request and request["ProfilerConfig"]["DisableProfiler"]


def test_cloud_tuning_job_uses_the_original_ranges_and_objective():
    with Cloud() as cloud:
        cloud.expect(
            "create_hyper_parameter_tuning_job",
            {"HyperParameterTuningJobArn": ARN + "hyper-parameter-tuning-job/mnist"},
        )
        sdk.tuner(cloud_estimator(cloud, count=1)).fit(
            sdk.channels("s3://bucket/mnist"), wait=False
        )
    request = cloud.requests["CreateHyperParameterTuningJob"]
    config = request["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": OBJECTIVE_METRIC,
    }
    ranges = config["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"][0]["Name"] == "lr"
    assert ranges["IntegerParameterRanges"][0] == {
        "Name": "hidden_channels",
        "MinValue": "2",
        "MaxValue": "32",
        "ScalingType": "Auto",
    }
    definition = request["TrainingJobDefinition"]
    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    assert definition["StaticHyperParameters"]["epochs"] == "3"


def test_cloud_deploy_and_batch_transform_requests():
    model_data = "s3://bucket/models/mnist-1/output/model.tar.gz"
    with Cloud() as cloud:
        cloud.expect("create_model", {"ModelArn": ARN + "model/mnist"})
        cloud.expect("create_endpoint_config", {"EndpointConfigArn": ARN + "endpoint-config/m"})
        cloud.expect("create_endpoint", {"EndpointArn": ARN + "endpoint/mnist"})
        mdl = sdk.model(cloud.session, IMAGE, ROLE, model_data)
        mdl.deploy(initial_instance_count=1, instance_type=sdk.CLOUD_SERVING_INSTANCE, wait=False)
        cloud.expect("create_model", {"ModelArn": ARN + "model/mnist"})  # the SDK asks again
        cloud.expect("create_transform_job", {"TransformJobArn": ARN + "transform-job/mnist"})
        transformer = mdl.transformer(
            instance_count=1,
            instance_type="ml.c6i.large",
            output_path="s3://bucket/predictions",
            accept="application/jsonlines",
            strategy="MultiRecord",
            assemble_with="Line",
            max_payload=6,
        )
        transformer.transform(
            "s3://bucket/mnist/test.jsonl",
            wait=False,
            content_type="application/jsonlines",
            split_type="Line",
        )
    container = cloud.requests["CreateModel"]["PrimaryContainer"]
    assert container["Image"] == IMAGE and container["ModelDataUrl"] == model_data
    variant = cloud.requests["CreateEndpointConfig"]["ProductionVariants"][0]
    assert variant["InstanceType"] == sdk.CLOUD_SERVING_INSTANCE
    transform = cloud.requests["CreateTransformJob"]
    assert transform["TransformInput"]["SplitType"] == "Line"
    assert transform["TransformInput"]["ContentType"] == "application/jsonlines"
    assert transform["TransformOutput"]["AssembleWith"] == "Line"
    assert transform["BatchStrategy"] == "MultiRecord"


def test_cloud_multi_model_endpoint_and_an_invoke_of_one_of_its_models():
    import io
    import json

    import numpy as np
    from botocore.response import StreamingBody

    prefix = "s3://bucket/mme/"
    answer = json.dumps({"predictions": [{"label": 3}]}).encode()
    with Cloud() as cloud:
        cloud.expect("create_model", {"ModelArn": ARN + "model/mnist-mme"})
        cloud.expect("create_endpoint_config", {"EndpointConfigArn": ARN + "endpoint-config/m"})
        cloud.expect("create_endpoint", {"EndpointArn": ARN + "endpoint/mnist-mme"})
        mdm = sdk.multi_data_model(cloud.session, IMAGE, ROLE, prefix)
        predictor = mdm.deploy(1, sdk.CLOUD_SERVING_INSTANCE, wait=False)
        cloud.expect(
            "invoke_endpoint",
            {
                "Body": StreamingBody(io.BytesIO(answer), len(answer)),
                "ContentType": "application/json",
            },
            cloud.runtime,
        )
        labels, _ = sdk.predict(predictor, np.zeros((1, 28, 28), np.uint8), "npy", "w2.tar.gz")
    assert labels == [3]
    container = cloud.requests["CreateModel"]["PrimaryContainer"]
    assert (container["Image"], container["Mode"]) == (IMAGE, "MultiModel")
    assert container["ModelDataUrl"] == prefix
    invoke = cloud.requests["InvokeEndpoint"]
    assert invoke["TargetModel"] == "w2.tar.gz"
    assert invoke["ContentType"] == "application/x-npy"
    assert invoke["EndpointName"] == predictor.endpoint_name
