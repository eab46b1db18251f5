"""multi-model-server's entry point for this image: ``container.serving.handler:handle``.

MMS calls ``handle(None, context)`` once when a worker starts: the hooks are resolved (the
user's module, if the model brings one), the model is loaded and run there, and a failure
propagates (and is left in a file for `serve`), so the worker never counts as ready. Every
request after that goes through the hooks; a toolkit error becomes its status with a JSON body,
any other exception a 500 with a JSON body that names the hook, and the worker lives on.
"""

import contextlib
import logging
import os
import signal
import threading

import torch
from sagemaker_inference.errors import BaseInferenceToolkitError

from container.messages import describe
from container.serving import socket_reader, user_code
from container.serving.content_types import ANY, JSON
from container.serving.cores import CoreShare
from container.serving.encoders import choose_accept
from container.serving.errors import RequestError, internal_error, user_hook_error
from container.serving.parameters import MAX_PAYLOAD_ENV, TIMEOUT_ENV, ServerSettings

logger = logging.getLogger(__name__)

socket_reader.install()

# A batch above this many images also takes the idle cores, for a model without its own figure.
SMALL_BATCH = 32


class Service:
    """One worker's model, hooks and share of the cores."""

    def __init__(self, context, settings):
        self.context, self.settings = context, settings
        # Made before the workers fork from this process, so that they all share it.
        self.cores = CoreShare(len(os.sched_getaffinity(0)), settings.workers)
        properties = context.system_properties
        model_dir, gpu = properties.get("model_dir"), properties.get("gpu_id")
        device = f"cuda:{gpu}" if torch.cuda.is_available() and gpu is not None else "cpu"
        self.hooks = user_code.load(model_dir)
        if self.hooks.own("model_fn"):
            self.model = self.hooks.model_fn(model_dir, device)
        else:
            self.model = self.run("model_fn", model_dir)
        logger.info("model loaded on %s", device)

    def run(self, name, *args):
        """The hook ``name`` on ``args``; a user's hook that fails with anything but a
        toolkit error is reported by name."""
        function = getattr(self.hooks, name)
        if self.hooks.own(name):
            return function(*args)
        try:
            return user_code.call(function, *args, context=self.context)
        except BaseInferenceToolkitError:
            raise
        except Exception as e:
            logger.exception("%s failed", name)
            raise user_hook_error(self.hooks.module, name, e) from e

    def answer(self, index, request):
        headers = self.context.request_processor[index].get_request_properties()
        body = request.get("body")
        if body is None and len(request) == 1:  # a body sent under another parameter name
            body = next(iter(request.values()))
        if body is not None and len(body) > self.settings.max_body_bytes:
            raise RequestError(
                413,
                f"body of {len(body)} bytes is above the {self.settings.max_payload_mb:g} MB "
                f"limit ({MAX_PAYLOAD_ENV})",
            )
        content_type = _header(headers, "content-type") or (headers.get("body") or {}).get(
            "content-type"
        )
        accept = _header(headers, "accept")
        if self.hooks.own("output_fn") and not self.hooks.transform_fn:  # refused before any work
            accept = choose_accept(accept)
        elif not accept or accept.strip() == ANY:
            accept = JSON  # what the toolkit gives a user's output_fn
        if self.hooks.transform_fn:
            result = self.run("transform_fn", self.model, body, content_type, accept)
        else:
            data = self.run("input_fn", body, content_type)
            small = getattr(self.model, "small_batch", SMALL_BATCH)
            with self.cores.torch_threads(large=_count(data) > small):
                prediction = self.run("predict_fn", data, self.model)
            result = self.run("output_fn", prediction, accept)
        payload, media_type = result if isinstance(result, tuple) else (result, accept)
        self.context.set_response_content_type(index, header_safe(media_type))
        return payload


_service = None
_settings = ServerSettings()


def initialize(context):
    global _service, _settings
    _settings = ServerSettings.from_environ()
    # One thread while loading: the server may fork the workers from this process, and a fork
    # after OpenMP or ONNX Runtime has started threads can hang the child.
    torch.set_num_threads(1)
    try:
        _service = Service(context, _settings)
    except Exception as e:
        report_load_failure(_settings, context.model_name, e)
        raise
    if _settings.loaded_file:
        open(_settings.loaded_file, "a").close()


def report_load_failure(settings, model_name, error):
    """Leaves why the model cannot load where `serve` (one model: it stops) or the load request
    (multi-model mode: it answers with it, 507 when memory ran out) reads it."""
    if settings.load_failure_dir:
        status = 507 if isinstance(error, MemoryError) else 500
        path, reason = (
            os.path.join(settings.load_failure_dir, model_name),
            f"{status} {describe(error)}",
        )
    elif settings.load_failure_file:
        path, reason = settings.load_failure_file, describe(error)
    else:
        return
    with open(path, "w") as f:
        f.write(reason)


def _header(headers, name):
    name = name.lower()
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _count(data):
    try:
        return len(data)
    except TypeError:
        return 1


class _Expired(BaseException):
    """Raised in the worker when a request runs past the timeout; a BaseException, so that a
    user's ``except Exception`` does not swallow it."""


@contextlib.contextmanager
def deadline(seconds):
    """Interrupts the block with _Expired after ``seconds``: the worker answers and lives on,
    where the model server would only restart it, after the timeout read as minutes."""

    def expire(signum, frame):
        raise _Expired

    if threading.current_thread() is not threading.main_thread():  # signals reach main only
        yield
        return
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed_out(seconds):
    return RequestError(
        504,
        f"the request ran past the {seconds} s timeout ({TIMEOUT_ENV}); send fewer images per "
        f"request, or raise it",
    )


def handle(data, context):
    if data is None:
        initialize(context)
        return None
    _service.context = context
    responses = []
    for index, request in enumerate(data):
        try:
            with deadline(_settings.timeout_s):
                responses.append(_service.answer(index, request))
        except _Expired:
            del responses[index:]  # it may have fired just after the answer was in
            logger.error("request %d ran past %d s", index, _settings.timeout_s)
            responses.append(_error(context, index, timed_out(_settings.timeout_s)))
        except BaseInferenceToolkitError as e:
            responses.append(_error(context, index, RequestError.from_toolkit(e)))
        except Exception as e:
            logger.exception("request %d failed", index)
            responses.append(_error(context, index, internal_error(e)))
    if not _settings.access_log:
        context.metrics = None  # the worker emits what context.metrics holds after each call
    return responses


def header_safe(text):
    """``text`` as printable ASCII. The model server frames a status phrase and a content type by
    their length in characters but sends their UTF-8 bytes: one non-ASCII character breaks the
    frame, and the server kills the worker ("Worker died")."""
    text = str(text).encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if " " <= c <= "~" else " " for c in text)


def _error(context, index, error):
    context.set_response_status(error.status_code, header_safe(error.phrase[:200]), index)
    context.set_response_content_type(index, JSON)
    return error.body()
