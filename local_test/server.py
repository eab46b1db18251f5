"""`serve` (or any model server command) started on this machine and driven over loopback: the
harness that tests and benchmarks share."""

import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import numpy as np

from container.serving.parameters import ServerSettings
from container.serving.supervisor import end_process_group, port_problem
from local_test import ROOT

DOCKER = os.environ.get("DOCKER", "docker")


def free_port():
    """A free port below 10000 (the model server takes at most four digits), with its
    neighbour free too (the loopback management API)."""
    for port in random.sample(range(8100, 9900, 2), 200):
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("0.0.0.0", port))
                b.bind(("127.0.0.1", port + 1))
                return port
        except OSError:
            continue
    raise RuntimeError("no free port pair in 8100-9900")


def serve_command(model_dir, port, workdir):
    """(argv, environment) of the image's `serve` on a copy of ``model_dir`` laid out as
    workdir/opt_ml/model. Each server gets its own TMPDIR under ``workdir``: the model server
    keeps one pid file per temporary folder and refuses to start beside another one."""
    base = os.path.join(workdir, "opt_ml")
    shutil.copytree(model_dir, os.path.join(base, "model"))
    os.makedirs(os.path.join(workdir, "tmp"))
    env = dict(
        os.environ,
        SAGEMAKER_BASE_DIR=base,
        PYTHONPATH=ROOT,
        SAGEMAKER_BIND_TO_PORT=str(port),
        TMPDIR=os.path.join(workdir, "tmp"),
    )
    return [sys.executable, "-m", "container", "serve"], env


def request(url, body=None, headers=None, method=None, timeout=30):
    """(status, headers, body bytes) of one HTTP request; errors are answers too."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def processes_naming(folder):
    """{pid: argv} of every live process whose arguments name a file under ``folder`` (a model
    server's JVM and Python workers name its configuration and model there)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(folder in arg for arg in argv):
            found[int(pid)] = argv
    return found


class LocalServer:
    """A model server started from ``argv`` and ``env`` in ``workdir``, its output in
    workdir/server.log. ``own_group``: in a process group of its own, which ``close`` ends
    whole (stopping multi-model-server's script alone leaves its JVM and workers running)."""

    def __init__(self, argv, env, workdir, port, own_group=False):
        self.port, self.folder, self.own_group = port, str(workdir), own_group
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = os.path.join(self.folder, "server.log")
        self.log = open(self.log_path, "w")  # noqa: SIM115 - open while the server runs
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )
        self.env, self.pings = env, []

    @property
    def workers(self):
        """How many workers `serve` starts, read from its environment as `serve` reads it."""
        return ServerSettings.from_environ(self.env).workers

    @classmethod
    def serve(cls, model_dir, workdir, port=None, own_group=False, **environ):
        """The image's `serve` on a copy of ``model_dir``, with ``environ`` added."""
        port = port or free_port()
        argv, env = serve_command(model_dir, port, str(workdir))
        return cls(argv, {**env, **environ}, workdir, port, own_group)

    def ping(self):
        """(status, JSON body) of /ping, or None while nothing answers."""
        try:
            status, _, body = request(self.url + "/ping", timeout=5)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        self.pings.append((round(time.monotonic() - self.started, 2), status))
        try:
            return status, json.loads(body)
        except ValueError:
            return status, {}

    def wait_healthy(self, timeout=120, workers=1):
        """Seconds from the start to /ping 200 with at least ``workers`` workers ready (the
        first answers 200 while the others still load); fails with the server's log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.ping()
            if answer and answer[0] == 200 and answer[1].get("ready_workers", 0) >= workers:
                return time.monotonic() - self.started
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"not healthy after {timeout} s; pings {self.pings}\n{self.output()}")

    def wait_exit(self, timeout=120):
        """The exit code of a server expected to stop by itself, pinging it meanwhile (what it
        answered is in ``pings``); None if it is still running after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self.ping()
            time.sleep(0.2)
        return self.process.returncode

    def invoke(self, body, content_type, accept=None, timeout=30):
        headers = {"Content-Type": content_type} if content_type else {}
        if accept:
            headers["Accept"] = accept
        return request(self.url + "/invocations", body, headers, method="POST", timeout=timeout)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()[-5000:]

    def processes(self):
        return processes_naming(self.folder)

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            if self.own_group:
                end_process_group(self.process.pid)
            self.log.close()


def start(argv, env, workdir, port, timeout=120):
    """A LocalServer in a group of its own and the seconds it took to a healthy /ping; refused
    at once where ``port`` is taken (a server already there would answer the pings)."""
    problem = port_problem(port)
    if problem:
        raise RuntimeError(problem)
    server = LocalServer(argv, env, workdir, port, own_group=True)
    try:
        return server, server.wait_healthy(timeout)
    except AssertionError:
        server.close()
        raise


class DockerServer:
    """`docker run IMAGE serve`, detached, with ``volumes`` ({host folder: container folder},
    read-only) and ``environ``, published on a loopback port; ``run_args``: more `docker run`
    options (--read-only, --memory, ...)."""

    def __init__(self, image, volumes, environ=None, run_args=(), docker=DOCKER):
        self.docker, self.name = docker, f"serve-{uuid.uuid4().hex[:8]}"
        self.started = time.monotonic()
        self.run(
            "run",
            "--detach",
            "--name",
            self.name,
            "--publish",
            "127.0.0.1::8080",
            *[arg for k, v in (environ or {}).items() for arg in ("--env", f"{k}={v}")],
            *run_args,
            *[
                arg
                for host, inside in volumes.items()
                for arg in ("--volume", f"{os.path.abspath(host)}:{inside}:ro")
            ],
            image,
            "serve",
        )
        port = self.run("port", self.name, "8080/tcp").stdout.split(":")[-1].strip()
        self.url = f"http://127.0.0.1:{port}"

    def ping(self):
        """/ping's status, or None where nothing answers."""
        try:
            return request(self.url + "/ping", timeout=5)[0]
        except OSError:
            return None

    def wait_healthy(self, timeout=120):
        """Seconds from `docker run` to /ping 200; fails with the container's log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping() == 200:
                return time.monotonic() - self.started
            if not self.running():
                raise AssertionError(f"the container stopped:\n{self.logs()}")
            time.sleep(0.1)
        raise AssertionError(f"not healthy in {timeout} s:\n{self.logs()}")

    def running(self):
        state = self.run("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def shell(self, command):
        return self.run("exec", self.name, "sh", "-c", command).stdout

    def logs(self):
        answer = self.run("logs", self.name, check=False)
        return (answer.stdout + answer.stderr)[-4000:]

    def close(self):
        self.run("rm", "--force", self.name, check=False)

    def run(self, *args, check=True):
        """A docker command; with ``check``, one that fails raises with docker's error."""
        answer = subprocess.run(
            [self.docker, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if check and answer.returncode:
            raise RuntimeError(f"docker {args[0]}: {answer.stderr.strip()}")
        return answer
