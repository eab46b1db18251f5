"""The image's commands: `python -m container train` and `python -m container serve`.

SageMaker runs `docker run IMAGE train` and `docker run IMAGE serve`.

train wraps the sagemaker-training toolkit's trainer with one fix: the toolkit writes its
failure file into /opt/ml/output and, when that folder is missing, fails to write it and exits 0,
so a broken job (no inputdataconfig.json, say) would look like a success. The folder is made
first.

serve starts multi-model-server with this image's handler and these changes from the
sagemaker-inference toolkit's start-up: /ping answers 503 until a worker has loaded the model
(a plugin replaces the stock /ping, which answers 200 while every worker is dead); the same
plugin answers batch transform's GET /execution-parameters, so that a job keeps every worker
busy instead of sending one request at a time; and nothing from the model archive is
pip-installed unless SAGEMAKER_INSTALL_MODEL_REQUIREMENTS=true.
"""
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from container import settings

USAGE = "usage: python -m container {train,serve}"
ENDPOINTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "endpoints")
ENDPOINTS_JAR = os.path.join(ENDPOINTS_DIR, "endpoints.jar")


def train():
    os.makedirs(os.path.join(settings.base_dir(), "output"), exist_ok=True)
    os.environ.setdefault(settings.TRAINING_MODULE_ENV, settings.TRAINING_MODULE)
    from sagemaker_training import trainer  # reads SAGEMAKER_BASE_DIR when imported
    trainer.train()


def bind_port(environ=os.environ):
    return int(environ.get(settings.BIND_TO_PORT_ENV) or settings.DEFAULT_PORT)


def response_limit(payload_mb):
    """The most bytes one answer may have: the longest answer for the most images one request
    can hold (a body at the payload limit of one-byte pixels, or the largest npz array). The
    server's own default, 6.5 MB, is less than the JSON for 50,000 images, and the server kills
    the worker that sends a longer answer: the caller gets a 500."""
    images = max(payload_mb * 2**20, settings.MAX_NPZ_ARRAY_BYTES) // settings.MIN_IMAGE_BYTES
    return int(min(2**31 - 1, images * settings.MAX_ANSWER_BYTES_PER_IMAGE + 2**20))


def execution_parameters(workers, payload_mb):
    """What batch transform asks the container (GET /execution-parameters): as many requests at
    once as there are workers, each up to the payload limit in whole megabytes (the API takes
    integers from 1 to 100, so a limit below 1 MB leaves the job's own setting). The batch
    strategy is left to the job: SageMaker documents it as MULTI_RECORD here, while the SDK's
    local mode takes only MultiRecord."""
    parameters = {"MaxConcurrentTransforms": workers}
    if payload_mb >= 1:
        parameters["MaxPayloadInMB"] = min(int(payload_mb), 100)
    return parameters


def server_properties(environ=os.environ):
    """multi-model-server's configuration, from the SAGEMAKER_* variables."""
    port = bind_port(environ)
    workers = int(environ.get(settings.WORKERS_ENV) or len(os.sched_getaffinity(0)))
    payload_mb = float(environ.get(settings.MAX_PAYLOAD_ENV) or settings.DEFAULT_MAX_PAYLOAD_MB)
    properties = {
        "load_models": "ALL",
        "decode_input_request": "false",  # the handler gets the raw bytes
        "default_service_handler": settings.HANDLER,
        "inference_address": f"http://0.0.0.0:{port}",
        # The management API registers models from URLs: loopback only, never exposed.
        "management_address": f"http://127.0.0.1:{port + 1}",
        "default_workers_per_model": workers,
        "default_response_timeout": int(environ.get(settings.TIMEOUT_ENV) or 60),
        # Bodies up to twice the limit reach the handler, which answers 413 with a JSON body
        # that names the limit; larger ones get the server's own bare 413.
        "max_request_size": int(2 * payload_mb * 1024 * 1024) + 1024 * 1024,
        "max_response_size": response_limit(payload_mb),
        # C1 alone (TieredStopAtLevel=1): the server is I/O glue, and C2 took half a core for
        # the first 20 s under load here, for no more requests/s once it had finished.
        "vmargs": environ.get(settings.VMARGS_ENV) or "-XX:+UseContainerSupport "
                  "-XX:MaxRAMPercentage=25 -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss1m",
        "plugins_path": ENDPOINTS_DIR,
        # Answered by GET /execution-parameters (endpoints/ExecutionParameters.java).
        "execution_parameters": json.dumps(execution_parameters(workers, payload_mb)),
        # Load the model once, in the process the workers fork from: one `import torch` and
        # one load at start-up instead of one per worker, and memory shared between them.
        # Not with a GPU: CUDA cannot be used in a process forked after it started.
        "preload_model": "false" if has_gpu() else "true",
    }
    return properties


def write_properties(properties, path):
    with open(path, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in properties.items()))


def model_server_command(config, model_dir):
    """multi-model-server in the foreground, configured by the file ``config``, logging through
    this image's log4j2.xml, serving the model in ``model_dir``."""
    log_config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.xml")
    return ["multi-model-server", "--foreground", "--model-store", "/", "--mms-config", config,
            "--log-config", log_config, "--models", f"model={model_dir}"]


def model_server_environment(**extra):
    """This process's environment for the model server, with ``extra``: this interpreter's bin
    folder first on PATH (the multi-model-server script, and the python its workers run), and
    this package importable by the workers."""
    bin_dir = os.path.dirname(sys.executable)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}",
                PYTHONPATH=os.pathsep.join(filter(None, [package_root,
                                                         os.environ.get("PYTHONPATH")])),
                **extra)


def has_gpu():
    """Whether the NVIDIA runtime gave this container a GPU (without importing torch)."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def port_problem(port):
    """Why the server cannot listen on ``port`` and the loopback ``port + 1`` (its management
    API), or None. The server itself, on a port in use, logs a Java exception, exits 0 and leaves
    its Python workers running."""
    for host, number in (("0.0.0.0", port), ("127.0.0.1", port + 1)):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server binds
            try:
                probe.bind((host, number))
            except OSError as e:
                return (f"cannot serve on port {port}: {host}:{number} is in use ({e.strerror}); "
                        f"stop what holds it, or choose another port with "
                        f"{settings.BIND_TO_PORT_ENV}")
    return None


def end_process_group(pgid, grace_s=5.0):
    """SIGTERM to every process left in group ``pgid`` (workers the server started), then
    SIGKILL to any still there after ``grace_s``."""
    deadline = time.monotonic() + grace_s
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def serve():
    if not os.path.exists(ENDPOINTS_JAR):
        sys.exit(f"{ENDPOINTS_JAR} is missing: build it with `make endpoints`")
    from sagemaker_inference import environment
    requirements = os.path.join(environment.code_dir, "requirements.txt")
    if os.path.exists(requirements):
        if settings.switched_on(settings.INSTALL_REQUIREMENTS_ENV):
            subprocess.run([sys.executable, "-m", "pip", "install", "-r", requirements], check=True)
        else:
            print(f"not installing {requirements}: set {settings.INSTALL_REQUIREMENTS_ENV}=true "
                  f"to allow it", flush=True)
    model_dir = os.path.abspath(environment.model_dir)
    if not any(os.path.exists(os.path.join(model_dir, name))
               for name in (settings.STATE_DICT_FILE, settings.TORCHSCRIPT_FILE)):
        sys.exit(f"cannot serve the model in {model_dir}: it holds neither "
                 f"{settings.STATE_DICT_FILE} nor {settings.TORCHSCRIPT_FILE}")
    properties = server_properties()
    problem = port_problem(bind_port())
    if problem:
        sys.exit(problem)
    workdir = tempfile.mkdtemp(prefix="serve-")
    config = os.path.join(workdir, "mms.properties")
    write_properties(properties, config)
    failure_file = os.path.join(workdir, "load-failure")
    command = model_server_command(config, model_dir)
    env = model_server_environment(**{
        # The handler shares the cores out by the number of workers.
        settings.WORKERS_ENV: str(properties["default_workers_per_model"]),
        settings.LOAD_FAILURE_FILE_ENV: failure_file})
    if settings.switched_on(settings.ACCESS_LOG_ENV):
        env[settings.ACCESS_LOG_LEVEL_ENV] = "info"
    # cwd: a scratch folder for anything the server writes, never the caller's directory.
    server = subprocess.Popen(command, env=env, cwd=workdir, start_new_session=True)
    stopping = []

    def stop(signum=None, frame=None):
        stopping.append(signum)
        try:
            os.killpg(server.pid, signal.SIGTERM)
        except ProcessLookupError:  # the server and everything it started have already gone
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # A worker that cannot load the model leaves its reason in failure_file: stop with it,
    # instead of a server whose /ping stays 503 and whose requests wait for a worker forever.
    while server.poll() is None:
        if os.path.exists(failure_file):
            with open(failure_file) as f:
                print(f"cannot serve the model in {model_dir}: {f.read()}", file=sys.stderr,
                      flush=True)
            stop()
            server.wait()
            end_process_group(server.pid)
            sys.exit(1)
        time.sleep(0.2)
    end_process_group(server.pid)
    if not stopping:
        print(f"multi-model-server stopped by itself (exit code {server.returncode}); its log "
              f"above says why", file=sys.stderr, flush=True)
        sys.exit(server.returncode or 1)
    sys.exit(server.returncode)


COMMANDS = {"train": train, "serve": serve}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        sys.exit(f"{USAGE}\ncommands: {', '.join(COMMANDS)}")
    COMMANDS[argv[0]]()


if __name__ == "__main__":
    main()
