"""What `serve` and the handler read from the environment, read once, and the limits they keep."""

import os
from dataclasses import dataclass

from container.devices import gpu_count
from container.files import switched_on

# sagemaker-inference toolkit settings, with the meanings its documentation gives them.
BIND_TO_PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
TIMEOUT_ENV = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
MAX_PAYLOAD_ENV = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
VMARGS_ENV = "SAGEMAKER_MODEL_SERVER_VMARGS"
# Multi-model endpoints: SageMaker sets it; `serve` then starts with no model.
MULTI_MODEL_ENV = "SAGEMAKER_MULTI_MODEL"
# Multi-model mode: a load is refused with 507 while less memory than this is free (the plugin
# endpoints/MultiModels.java reads it).
MEMORY_HEADROOM_ENV = "SAGEMAKER_MODEL_MEMORY_HEADROOM_MB"
# `serve` restarts the model server when /ping stays unhealthy this many seconds after it was
# healthy (no worker can start any more).
RESTART_AFTER_ENV = "SAGEMAKER_RESTART_UNHEALTHY_AFTER_S"
# Opt-in: pip install /opt/ml/model/code/requirements.txt at start-up (off: archives are data).
INSTALL_REQUIREMENTS_ENV = "SAGEMAKER_INSTALL_MODEL_REQUIREMENTS"
# Opt-in: the model server's per-request log lines (access log, backend time) on stdout.
ACCESS_LOG_ENV = "SAGEMAKER_ACCESS_LOG"
# What `serve` passes to the server for the access log; log4j2.xml reads it.
ACCESS_LOG_LEVEL_ENV = "MNIST_ACCESS_LOG_LEVEL"
# File a worker writes its reason into when the model cannot be loaded; `serve` then stops.
LOAD_FAILURE_FILE_ENV = "MNIST_SERVE_LOAD_FAILURE_FILE"
# File a worker (or the process the workers fork from) creates once it has loaded the model:
# from then on, `serve` restarts a server whose /ping stays unhealthy.
LOADED_FILE_ENV = "MNIST_SERVE_LOADED_FILE"
# Multi-model mode: the folder where a worker leaves that reason, in a file named after the
# model, for the load request to answer with.
LOAD_FAILURE_DIR_ENV = "MNIST_SERVE_LOAD_FAILURE_DIR"

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_S = 60
DEFAULT_RESTART_AFTER_S = 10
DEFAULT_MAX_PAYLOAD_MB = 6  # SageMaker real-time endpoints accept 6 MB
# C1 alone (TieredStopAtLevel=1): the server is I/O glue, and C2 spends a core compiling for
# the first seconds under load for no more requests/s afterwards.
DEFAULT_VMARGS = (
    "-XX:+UseContainerSupport -XX:MaxRAMPercentage=25 -XX:+UseSerialGC "
    "-XX:TieredStopAtLevel=1 -Xss1m"
)

# An npz member may expand to this much (zip bombs): about 342,000 one-byte images.
MAX_NPZ_ARRAY_BYTES = 256 * 2**20
# A picture of a digit above this many pixels is refused before it is decoded.
MAX_IMAGE_PIXELS = 40_000_000
# The fewest bytes one image takes in a request: 784 one-byte pixels, as uint8 npy.
MIN_IMAGE_BYTES = 28 * 28
# The most bytes any response type spends on one image (a JSON record takes about 140).
MAX_ANSWER_BYTES_PER_IMAGE = 200


def _number(environ, name, default, kind=int):
    """The setting ``name`` as a positive ``kind``, ``default`` when unset; a ValueError that
    names the setting otherwise."""
    text = environ.get(name)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {what} above 0, not {text!r}")
    return value


@dataclass(frozen=True)
class ServerSettings:
    port: int = DEFAULT_PORT
    workers: int = 1
    timeout_s: int = DEFAULT_TIMEOUT_S
    max_payload_mb: float = DEFAULT_MAX_PAYLOAD_MB
    vmargs: str = DEFAULT_VMARGS
    access_log: bool = False
    install_requirements: bool = False
    load_failure_file: str | None = None
    multi_model: bool = False
    load_failure_dir: str | None = None
    restart_after_s: float = DEFAULT_RESTART_AFTER_S
    loaded_file: str | None = None

    @classmethod
    def from_environ(cls, environ=os.environ):
        multi_model = switched_on(MULTI_MODEL_ENV, environ)
        # Many models share the cores in multi-model mode: one worker each unless told. On GPUs,
        # one worker a GPU: the model server hands each its own, and more would share one.
        default_workers = 1 if multi_model else gpu_count() or len(os.sched_getaffinity(0))
        return cls(
            port=_number(environ, BIND_TO_PORT_ENV, DEFAULT_PORT),
            workers=_number(environ, WORKERS_ENV, default_workers),
            timeout_s=_number(environ, TIMEOUT_ENV, DEFAULT_TIMEOUT_S),
            max_payload_mb=_number(environ, MAX_PAYLOAD_ENV, DEFAULT_MAX_PAYLOAD_MB, float),
            vmargs=environ.get(VMARGS_ENV) or DEFAULT_VMARGS,
            access_log=switched_on(ACCESS_LOG_ENV, environ),
            install_requirements=switched_on(INSTALL_REQUIREMENTS_ENV, environ),
            load_failure_file=environ.get(LOAD_FAILURE_FILE_ENV),
            multi_model=multi_model,
            load_failure_dir=environ.get(LOAD_FAILURE_DIR_ENV),
            restart_after_s=_number(environ, RESTART_AFTER_ENV, DEFAULT_RESTART_AFTER_S, float),
            loaded_file=environ.get(LOADED_FILE_ENV),
        )

    @property
    def max_body_bytes(self):
        return self.max_payload_mb * 1024 * 1024
