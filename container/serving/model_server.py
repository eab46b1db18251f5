"""`serve`: multi-model-server with this image's handler, configured from the SAGEMAKER_*
settings, and watched until it stops.

What differs from the sagemaker-inference toolkit's start-up: a plugin (endpoints/) answers
/ping truthfully (503 until a worker has loaded the model) and batch transform's
GET /execution-parameters; a model that cannot load stops `serve` with the reason; a port in
use is refused at once; the management API listens on loopback only; nothing from the model
archive is installed unless SAGEMAKER_INSTALL_MODEL_REQUIREMENTS=true.
"""

import json
import math
import os
import subprocess
import sys
import tempfile

from container.devices import has_gpu
from container.files import MODEL_FILES
from container.serving import user_code
from container.serving.parameters import (
    ACCESS_LOG_LEVEL_ENV,
    INSTALL_REQUIREMENTS_ENV,
    LOAD_FAILURE_DIR_ENV,
    LOAD_FAILURE_FILE_ENV,
    LOADED_FILE_ENV,
    MAX_ANSWER_BYTES_PER_IMAGE,
    MAX_NPZ_ARRAY_BYTES,
    MIN_IMAGE_BYTES,
    WORKERS_ENV,
    ServerSettings,
)
from container.serving.supervisor import Supervisor, port_problem

HERE = os.path.dirname(os.path.abspath(__file__))
HANDLER = "container.serving.handler:handle"
ENDPOINTS_DIR = os.path.join(HERE, "endpoints")
ENDPOINTS_JAR = os.path.join(ENDPOINTS_DIR, "endpoints.jar")
# The server class endpoints/server/ patches, compiled; found first from the server's folder.
SERVER_CLASSES = os.path.join(ENDPOINTS_DIR, "server", "classes")
LOG_CONFIG = os.path.join(HERE, "log4j2.xml")


def response_limit(payload_mb):
    """The most bytes one answer may have: the longest answer for the most images one request
    can hold (a body at the payload limit of one-byte pixels, or the largest npz array). The
    server kills the worker that sends a longer answer, and its own default is less than the
    JSON for 50,000 images."""
    images = max(payload_mb * 2**20, MAX_NPZ_ARRAY_BYTES) // MIN_IMAGE_BYTES
    return int(min(2**31 - 1, images * MAX_ANSWER_BYTES_PER_IMAGE + 2**20))


def execution_parameters(workers, payload_mb):
    """What batch transform asks the container (GET /execution-parameters): as many requests at
    once as there are workers, each up to the payload limit in whole megabytes (the API takes
    integers from 1 to 100, so a limit below 1 MB leaves the job's own setting). The batch
    strategy is left to the job."""
    parameters = {"MaxConcurrentTransforms": workers}
    if payload_mb >= 1:
        parameters["MaxPayloadInMB"] = min(int(payload_mb), 100)
    return parameters


def server_properties(settings, handler=HANDLER):
    """multi-model-server's configuration for ``settings`` (a ServerSettings)."""
    properties = {
        "load_models": "ALL",
        "decode_input_request": "false",  # the handler gets the raw bytes
        "default_service_handler": handler,
        "inference_address": f"http://0.0.0.0:{settings.port}",
        # The management API registers models from URLs: loopback only, never exposed.
        "management_address": f"http://127.0.0.1:{settings.port + 1}",
        "default_workers_per_model": settings.workers,
        # The handler answers a request that runs past the timeout with a 504; the server reads
        # its own timeout in minutes, and restarts a worker stuck past it in native code.
        "default_response_timeout": math.ceil(settings.timeout_s / 60) + 1,
        # Bodies up to twice the limit reach the handler, which answers 413 with a JSON body
        # that names the limit; larger ones get the server's own bare 413.
        "max_request_size": int(2 * settings.max_body_bytes) + 1024 * 1024,
        "max_response_size": response_limit(settings.max_payload_mb),
        "vmargs": settings.vmargs,
        "plugins_path": ENDPOINTS_DIR,
        "execution_parameters": json.dumps(
            execution_parameters(settings.workers, settings.max_payload_mb)
        ),
        # Load the model once, in the process the workers fork from: one `import torch` and
        # one load at start-up, and memory shared between them. Not with a GPU: CUDA cannot be
        # used in a process forked after it started.
        "preload_model": "false" if has_gpu() else "true",
    }
    if settings.multi_model:
        # SageMaker sends its model API (/models, answered by endpoints/MultiModels.java) to
        # the served port: one listener for both, and no model at start-up.
        properties["management_address"] = properties["inference_address"]
        del properties["load_models"]
    return properties


def write_properties(properties, path):
    with open(path, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in properties.items()))


def model_server_command(config, model_dir=None):
    """multi-model-server in the foreground, configured by the file ``config``, logging through
    log4j2.xml, serving the model in ``model_dir`` (none: multi-model mode)."""
    command = [
        "multi-model-server",
        "--foreground",
        "--model-store",
        "/",
        "--mms-config",
        config,
        "--log-config",
        LOG_CONFIG,
    ]
    return command + ["--models", f"model={model_dir}"] if model_dir else command


def model_server_environment(**extra):
    """This process's environment for the model server, with ``extra``: this interpreter's bin
    folder first on PATH (the server's script, and the python its workers run), and this
    package importable by the workers."""
    bin_dir = os.path.dirname(sys.executable)
    package_root = os.path.dirname(os.path.dirname(HERE))
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    return dict(
        os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}", PYTHONPATH=python_path, **extra
    )


def prepare_user_code(model_dir, settings):
    """The user's code folder, fetched once when it lies in S3, with its requirements.txt
    installed when the user brought code (the module SAGEMAKER_PROGRAM names is there) or
    SAGEMAKER_INSTALL_MODEL_REQUIREMENTS=true; otherwise nothing from the archive runs. A failed
    install stops `serve` with pip's reason."""
    folder = user_code.resolve_code_dir(model_dir)
    requirements = os.path.join(folder, "requirements.txt")
    if not os.path.exists(requirements):
        return folder
    if user_code.module_path(folder) is None and not settings.install_requirements:
        print(
            f"not installing {requirements}: it comes with no {user_code.PROGRAM_ENV} module; "
            f"set {INSTALL_REQUIREMENTS_ENV}=true to install it anyway",
            flush=True,
        )
        return folder
    print(f"installing {requirements}", flush=True)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-r",
        requirements,
    ]
    done = subprocess.run(pip, cwd=folder, capture_output=True, text=True, check=False)
    print(done.stdout, end="", flush=True)
    if done.returncode:
        reason = done.stderr.strip()[-2000:]
        sys.exit(f"cannot install {requirements} (pip exit code {done.returncode}):\n{reason}")
    return folder


def serve():
    for built in (ENDPOINTS_JAR, SERVER_CLASSES):
        if not os.path.exists(built):
            sys.exit(f"{built} is missing: build it with `make endpoints`")
    try:
        settings = ServerSettings.from_environ()
    except ValueError as e:
        sys.exit(f"cannot serve: {e}")
    workdir = tempfile.mkdtemp(prefix="serve-")
    # The server's class path starts with its working folder: the patched class comes first.
    for name in os.listdir(SERVER_CLASSES):
        os.symlink(os.path.join(SERVER_CLASSES, name), os.path.join(workdir, name))
    if settings.multi_model:
        serve_models(settings, workdir)
    else:
        serve_model(settings, workdir)


def serve_models(settings, workdir):
    """Multi-model mode: no model at start-up; SageMaker loads each with POST /models, and a
    model that cannot load answers that request with the reason instead of stopping `serve`."""
    failures = os.path.join(workdir, "load-failures")
    os.mkdir(failures)
    supervisor = supervised(settings, workdir, {LOAD_FAILURE_DIR_ENV: failures}, management=False)
    sys.exit(supervisor.run())


def serve_model(settings, workdir):
    from sagemaker_inference import environment  # reads SAGEMAKER_BASE_DIR when imported

    model_dir = os.path.abspath(environment.model_dir)
    code_dir = prepare_user_code(model_dir, settings)
    brought_code = user_code.module_path(code_dir) is not None  # its model_fn reads the folder
    if not brought_code and not any(
        os.path.exists(os.path.join(model_dir, n)) for n in MODEL_FILES
    ):
        sys.exit(
            f"cannot serve the model in {model_dir}: it holds neither {' nor '.join(MODEL_FILES)}"
        )
    failure_file = os.path.join(workdir, "load-failure")
    loaded_file = os.path.join(workdir, "loaded")
    extra_env = {
        LOADED_FILE_ENV: loaded_file,
        LOAD_FAILURE_FILE_ENV: failure_file,
        user_code.CODE_DIR_ENV: code_dir,
    }
    supervisor = supervised(settings, workdir, extra_env, model_dir, loaded_file=loaded_file)
    sys.exit(supervisor.run(failure_file, model_dir))


def supervised(settings, workdir, extra_env, model_dir=None, management=True, **options):
    """The Supervisor of multi-model-server configured by ``settings`` in ``workdir``, its
    handler's environment with ``extra_env``, serving ``model_dir`` (none: multi-model mode);
    ``management`` and ``options`` as Supervisor takes them. A port in use ends `serve` first."""
    problem = port_problem(settings.port, management)
    if problem:
        sys.exit(problem)
    config = os.path.join(workdir, "mms.properties")
    write_properties(server_properties(settings), config)
    # The handler shares the cores out by the number of workers.
    env = model_server_environment(**{WORKERS_ENV: str(settings.workers), **extra_env})
    if settings.access_log:
        env[ACCESS_LOG_LEVEL_ENV] = "info"
    command = model_server_command(config, model_dir)
    # cwd: a scratch folder for anything the server writes, never the caller's directory.
    return Supervisor(
        lambda: subprocess.Popen(command, env=env, cwd=workdir, start_new_session=True),
        settings.port,
        settings.restart_after_s,
        management=management,
        **options,
    )
