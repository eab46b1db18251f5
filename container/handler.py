"""multi-model-server's entry point for this image: ``container.handler:handle``.

MMS calls ``handle(None, context)`` once when a worker starts: the model is loaded and run
once there, and any failure propagates, so the worker never counts as ready (the stock
handler service logs such a failure and carries on). Every request after that goes through
input_fn, predict_fn and output_fn; a RequestError becomes its 4xx with a JSON body, and any
other exception a 500 with a JSON body, never a traceback and never a dead worker. The worker
sends no metric lines per request (MMS would read them back and drop them) unless
SAGEMAKER_ACCESS_LOG=true.

Importing this module also replaces the worker's socket read (SocketReader): the stock one
makes a recv() call for each field of a message, 32 for a one-image request, and spends about
1.5 ms more CPU on a 3 MB request.
"""
import logging
import os

import torch
from mms.protocol import otf_message_handler

from container import serving, settings
from container.cores import CoreShare

logger = logging.getLogger(__name__)


def _receive(connection, view, received, needed):
    """Fills ``view`` from ``connection`` past ``received`` bytes until it holds at least
    ``needed``; the count it then holds."""
    while received < needed:
        count = connection.recv_into(view[received:])
        if count == 0:
            logging.info("Frontend disconnected.")
            raise ValueError("Frontend disconnected")
        received += count
    return received


class SocketReader:
    """Reads the server's messages through one buffer. A message is many small fields (each
    header's name and value, each after its length) and then the body: the small fields come
    from memory after one recv() for all of them, and a field that does not fit the buffer is
    read straight into a bytearray of its own size (the stock read asks recv() for all that is
    left each time, a new object per call, and appends each piece to a bytearray that grows by
    an eighth at a time, copying what it holds). recv() is called only while the message asked
    for is not all in, so it never waits for more than the server is sending."""

    SIZE = 65536

    def __init__(self):
        self.connection, self.buffer, self.start, self.end = None, bytearray(self.SIZE), 0, 0

    def read(self, connection, length):
        """The next ``length`` bytes from ``connection``, as a bytearray of their own."""
        if connection is not self.connection:  # nothing buffered comes from a new connection
            self.connection, self.start, self.end = connection, 0, 0
        have = self.end - self.start
        if length <= have:
            self.start += length
            return self.buffer[self.start - length:self.start]
        if length > self.SIZE:
            data = bytearray(length)
            data[:have] = self.buffer[self.start:self.end]
            self.start = self.end = 0
            with memoryview(data) as view:
                _receive(connection, view, have, length)
            return data
        self.buffer[:have] = self.buffer[self.start:self.end]  # what is left, to the front
        self.start, self.end = 0, have
        with memoryview(self.buffer) as view:
            self.end = _receive(connection, view, have, length)
        self.start = length
        return self.buffer[:length]


# The worker reads every message through this name, looked up at each call.
otf_message_handler._retrieve_buffer = SocketReader().read

_model = None
_cores = None
_max_body_mb = settings.DEFAULT_MAX_PAYLOAD_MB
_metrics = False


def initialize(context):
    global _model, _cores, _max_body_mb, _metrics
    _max_body_mb = float(os.environ.get(settings.MAX_PAYLOAD_ENV) or _max_body_mb)
    _metrics = settings.switched_on(settings.ACCESS_LOG_ENV)
    # Made before the workers fork from this process, so that they all share it.
    _cores = CoreShare(len(os.sched_getaffinity(0)),
                       int(os.environ.get(settings.WORKERS_ENV) or 1))
    properties = context.system_properties
    gpu = properties.get("gpu_id")
    device = f"cuda:{gpu}" if torch.cuda.is_available() and gpu is not None else "cpu"
    # One thread while loading: with preload_model the server loads here and then forks the
    # workers, and a fork after OpenMP or ONNX Runtime has started threads can hang the child.
    # Each request then runs on the threads _cores grants it.
    torch.set_num_threads(1)
    try:
        _model = serving.model_fn(properties.get("model_dir"), device)
    except Exception as e:
        failure_file = os.environ.get(settings.LOAD_FAILURE_FILE_ENV)
        if failure_file:  # `serve` watches for it and stops the server with this reason
            with open(failure_file, "w") as f:
                f.write(serving.describe(e))
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
    if body is not None and len(body) > _max_body_mb * 1024 * 1024:
        raise serving.RequestError(413, f"body of {len(body)} bytes is above the "
                                        f"{_max_body_mb:g} MB limit ({settings.MAX_PAYLOAD_ENV})")
    content_type = _header(headers, "content-type") or (headers.get("body") or {}).get(
        "content-type")
    accept = serving.choose_accept(_header(headers, "accept"))
    batch = serving.input_fn(body, content_type)
    with _cores.torch_threads(large=len(batch) > _model.SMALL_BATCH):
        probabilities = serving.predict_fn(batch, _model)
    payload, media_type = serving.output_fn(probabilities, accept)
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
        except serving.RequestError as e:
            responses.append(_error(context, index, e))
        except Exception as e:  # noqa: BLE001 - a bad request must never kill the worker
            logger.exception("request %d failed", index)
            responses.append(_error(context, index, serving.RequestError(
                500, f"internal error: {serving.describe(e)[:300]}")))
    if not _metrics:
        context.metrics = None  # the worker emits what context.metrics holds after each call
    return responses


def _error(context, index, error):
    context.set_response_status(error.status_code, error.phrase[:200].replace("\n", " "), index)
    context.set_response_content_type(index, settings.JSON)
    return error.body()
