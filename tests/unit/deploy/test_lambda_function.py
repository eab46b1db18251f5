"""The Lambda in front of the endpoint, with its sagemaker-runtime client stubbed by botocore's
Stubber (checked against the service model): nothing here reaches AWS."""

import base64
import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from deploy import lambda_function

REGION = "eu-west-1"


@pytest.fixture
def runtime(monkeypatch):
    """The Lambda's sagemaker-runtime client, stubbed."""
    client = boto3.client(
        "sagemaker-runtime",
        region_name=REGION,
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="example",
    )
    monkeypatch.setattr(lambda_function, "_runtime", client)
    monkeypatch.setenv("ENDPOINT_NAME", "mnist-endpoint")
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def body(data):
    return StreamingBody(io.BytesIO(data), len(data))


def test_lambda_forwards_a_png_and_returns_the_prediction(runtime):
    png = b"\x89PNG\r\n\x1a\nfake-but-forwarded-as-is"
    prediction = json.dumps({"predictions": [{"label": 7}]}).encode()
    runtime.add_response(
        "invoke_endpoint",
        {"Body": body(prediction), "ContentType": "application/json"},
        expected_params={
            "EndpointName": "mnist-endpoint",
            "Body": png,
            "ContentType": "image/png",
            "Accept": "application/json",
        },
    )
    event = {
        "headers": {"content-type": "image/png"},
        "isBase64Encoded": True,
        "body": base64.b64encode(png).decode(),
    }
    response = lambda_function.handler(event)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"predictions": [{"label": 7}]}


def test_lambda_passes_the_endpoints_4xx_through(runtime):
    message = json.dumps({"error": "Content-Type text/plain is not supported", "status": 415})
    runtime.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        http_status_code=424,
        response_meta={},
        modeled_fields={"OriginalStatusCode": 415, "OriginalMessage": message},
    )
    response = lambda_function.handler({"headers": {"Content-Type": "text/plain"}, "body": "hello"})
    assert response["statusCode"] == 415
    assert "text/plain" in json.loads(response["body"])["error"]


def test_lambda_answers_an_empty_body_itself(runtime):
    response = lambda_function.handler({"headers": {}, "body": ""})
    assert response["statusCode"] == 400 and "no body" in json.loads(response["body"])["error"]
