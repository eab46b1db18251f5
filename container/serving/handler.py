"""multi-model-server's entry point for this image: ``container.serving.handler:handle``.

MMS calls ``handle(None, context)`` once when a worker starts: the model is loaded and run
there, and a failure propagates (and is left in a file for `serve`), so the worker never counts
as ready. Every request after that goes through the hooks; a RequestError becomes its status
with a JSON body, any other exception a 500 with a JSON body, and the worker lives on.
"""

import logging
import os

import torch

from container.messages import describe
from container.serving import hooks, socket_reader
from container.serving.content_types import JSON
from container.serving.cores import CoreShare
from container.serving.encoders import choose_accept
from container.serving.errors import RequestError, internal_error
from container.serving.parameters import MAX_PAYLOAD_ENV, ServerSettings

logger = logging.getLogger(__name__)

socket_reader.install()

_model = None
_cores = None
_settings = ServerSettings()


def initialize(context):
    global _model, _cores, _settings
    _settings = ServerSettings.from_environ()
    # Made before the workers fork from this process, so that they all share it.
    _cores = CoreShare(len(os.sched_getaffinity(0)), _settings.workers)
    properties = context.system_properties
    gpu = properties.get("gpu_id")
    device = f"cuda:{gpu}" if torch.cuda.is_available() and gpu is not None else "cpu"
    # One thread while loading: the server may fork the workers from this process, and a fork
    # after OpenMP or ONNX Runtime has started threads can hang the child.
    torch.set_num_threads(1)
    try:
        _model = hooks.model_fn(properties.get("model_dir"), device)
    except Exception as e:
        if _settings.load_failure_file:  # `serve` watches for it and stops with this reason
            with open(_settings.load_failure_file, "w") as f:
                f.write(describe(e))
        raise
    logger.info("model loaded on %s", device)


def _header(headers, name):
    name = name.lower()
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _answer(context, index, request):
    headers = context.request_processor[index].get_request_properties()
    body = request.get("body")
    if body is None and len(request) == 1:  # a body sent under another parameter name
        body = next(iter(request.values()))
    if body is not None and len(body) > _settings.max_body_bytes:
        raise RequestError(
            413,
            f"body of {len(body)} bytes is above the {_settings.max_payload_mb:g} MB limit "
            f"({MAX_PAYLOAD_ENV})",
        )
    content_type = _header(headers, "content-type") or (headers.get("body") or {}).get(
        "content-type"
    )
    accept = choose_accept(_header(headers, "accept"))
    batch = hooks.input_fn(body, content_type)
    with _cores.torch_threads(large=len(batch) > _model.small_batch):
        probabilities = hooks.predict_fn(batch, _model)
    payload, media_type = hooks.output_fn(probabilities, accept)
    context.set_response_content_type(index, media_type)
    return payload


def handle(data, context):
    if data is None:
        initialize(context)
        return None
    responses = []
    for index, request in enumerate(data):
        try:
            responses.append(_answer(context, index, request))
        except RequestError as e:
            responses.append(_error(context, index, e))
        except Exception as e:
            logger.exception("request %d failed", index)
            responses.append(_error(context, index, internal_error(e)))
    if not _settings.access_log:
        context.metrics = None  # the worker emits what context.metrics holds after each call
    return responses


def _error(context, index, error):
    context.set_response_status(error.status_code, error.phrase[:200].replace("\n", " "), index)
    context.set_response_content_type(index, JSON)
    return error.body()
