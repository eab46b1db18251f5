"""Errors a caller can act on: each carries its HTTP status and goes back as a JSON body."""

import json

from sagemaker_inference.errors import BaseInferenceToolkitError

from container.messages import describe
from container.serving.content_types import INPUTS, OUTPUTS

# The array shapes a 400 tells the caller the endpoint accepts.
SHAPES = "(28, 28), (784,), (N, 28, 28), (N, 784) or (N, 1, 28, 28)"


class RequestError(BaseInferenceToolkitError):
    """A request the server cannot answer; the status and message go back to the caller."""

    def __init__(self, status, message, **details):
        self.details = details
        super().__init__(status, message, message)

    def body(self):
        return json.dumps({"error": self.message, "status": self.status_code, **self.details})

    @classmethod
    def from_toolkit(cls, error):
        """Any sagemaker-inference toolkit error (a user's hook may raise one) as a RequestError."""
        if isinstance(error, cls):
            return error
        message = str(getattr(error, "message", "") or error)
        return cls(error.status_code, message)


def bad_request(message):
    return RequestError(400, message, accepted_content_types=list(INPUTS), expected_shapes=SHAPES)


def unsupported_media_type(content_type):
    return RequestError(
        415,
        f"Content-Type {content_type or '(none)'} is not supported",
        accepted_content_types=list(INPUTS),
    )


def not_acceptable(accept):
    return RequestError(
        406,
        f"Accept {accept} names no supported response type",
        accepted_response_types=list(OUTPUTS),
    )


def internal_error(error):
    return RequestError(500, f"internal error: {describe(error)[:300]}")


def user_hook_error(module, hook, error):
    """A user's hook that failed with an unexpected exception: a 500 that names the hook."""
    where = f"{hook} in {module}" if module else hook
    return RequestError(500, f"{where} failed: {describe(error)[:300]}", hook=hook)
