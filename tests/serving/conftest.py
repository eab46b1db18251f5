"""A real multi-model-server (`python -m container serve`) on a model that training wrote."""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from local_test.opt_ml import free_port, make_opt_ml, serve_command
from tests.conftest import DATA_DIR, run_training

PAYLOAD_LIMIT_MB = 2


@pytest.fixture(scope="session")
def trained_model_dir(mnist, tmp_path_factory):
    """A model trained for one quick epoch on the full training set (about 99% accurate)."""
    base = make_opt_ml(tmp_path_factory.mktemp("serving_opt_ml"),
                       {"hidden_channels": 16, "batch_size": 128, "epochs": 1},
                       {name: os.path.join(DATA_DIR, name) for name in ("training", "testing")})
    code, log = run_training(base)
    assert code == 0, log
    return os.path.join(base, "model")


def request(url, body=None, headers=None, method=None, timeout=30):
    """(status, headers, body bytes) of one HTTP request; errors are answers too."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


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


class Server:
    """A running `serve` on a copy of ``model_dir``; stopped by close()."""

    def __init__(self, model_dir, tmp_path, **environ):
        self.port = free_port()
        self.folder = str(tmp_path)
        self.url = f"http://127.0.0.1:{self.port}"
        argv, env = serve_command(model_dir, self.port, str(tmp_path))
        env.update(environ)
        self.log_path = tmp_path / "server.log"
        self.log = open(self.log_path, "w")
        self.started = time.monotonic()
        self.process = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.pings = []

    def ping(self):
        try:
            status, _, body = request(self.url + "/ping", timeout=5)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        self.pings.append((round(time.monotonic() - self.started, 2), status))
        return status, json.loads(body)

    def wait_healthy(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.ping()
            if answer and answer[0] == 200:
                return time.monotonic() - self.started
            assert self.process.poll() is None, self.output()
            time.sleep(0.1)
        raise AssertionError(f"not healthy after {timeout} s; pings {self.pings}\n{self.output()}")

    def invoke(self, body, content_type, accept=None):
        headers = {"Content-Type": content_type} if content_type else {}
        if accept:
            headers["Accept"] = accept
        return request(self.url + "/invocations", body, headers, method="POST")

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()[-5000:]

    def processes(self):
        return processes_naming(self.folder)

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(trained_model_dir, tmp_path_factory):
    srv = Server(trained_model_dir, tmp_path_factory.mktemp("server"),
                 SAGEMAKER_MAX_PAYLOAD_IN_MB=str(PAYLOAD_LIMIT_MB))
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.close()
