"""AWS Lambda behind API Gateway in front of the endpoint: forwards the request body, its
Content-Type and Accept to `sagemaker-runtime invoke_endpoint` and answers with the model's
response. The endpoint's own 4xx (a bad image, an unsupported type) reach the caller as they are.

Deploy with handler `lambda_function.handler`, environment ENDPOINT_NAME, and a role that may
call sagemaker:InvokeEndpoint on that endpoint. Works with REST (v1) and HTTP (v2) API events.
"""

import base64
import json
import os

import boto3
from botocore.exceptions import ClientError

TEXT_TYPES = ("application/json", "application/jsonlines", "text/csv")
_runtime = None


def runtime():
    global _runtime
    if _runtime is None:
        _runtime = boto3.client("sagemaker-runtime")
    return _runtime


def header(event, name, default):
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return headers.get(name.lower()) or default


def answer(status, body, content_type="application/json"):
    if isinstance(body, bytes) and content_type.split(";")[0] not in TEXT_TYPES:
        return {
            "statusCode": status,
            "headers": {"Content-Type": content_type},
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type},
        "body": body,
        "isBase64Encoded": False,
    }


def error(status, message):
    return answer(status, json.dumps({"error": message, "status": status}))


def handler(event, context=None):
    body = event.get("body")
    if not body:
        return error(400, "the request has no body: send an image or images")
    data = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    try:
        response = runtime().invoke_endpoint(
            EndpointName=os.environ["ENDPOINT_NAME"],
            Body=data,
            ContentType=header(event, "Content-Type", "application/json"),
            Accept=header(event, "Accept", "application/json"),
        )
    except ClientError as e:
        details = e.response.get("Error", {})
        original = e.response.get("OriginalStatusCode")
        if details.get("Code") == "ModelError" and original and 400 <= int(original) < 500:
            # The endpoint answered 4xx: its JSON body names the problem.
            return answer(int(original), e.response.get("OriginalMessage", ""))
        if details.get("Code") == "ValidationError":
            return error(400, details.get("Message", "invalid request"))
        return error(502, f"the endpoint failed: {details.get('Message', str(e))}")
    return answer(200, response["Body"].read(), response.get("ContentType", "application/json"))
