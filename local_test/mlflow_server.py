"""An MLflow tracking server on this machine, for `make local-sweep`, `make mlflow-ui` and the
tests: its store (SQLite and the artifacts) in one folder, listening where the training
containers reach it: the host's address on Docker's default bridge.

    python -m local_test.mlflow_server --store build/mlflow [--port 5000]
"""

import argparse
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

DOCKER = os.environ.get("DOCKER", "docker")


def docker_host_address():
    """The host's address on Docker's default bridge, which containers on any of its local
    networks reach (SDK local mode's included): the bridge's gateway, else the first address of
    its subnet; 127.0.0.1 without a Docker engine."""
    try:
        answer = subprocess.run(
            [DOCKER, "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        config = json.loads(answer.stdout)[0] if answer.returncode == 0 else {}
    except (OSError, ValueError, IndexError):
        config = {}
    address = config.get("Gateway")
    if not address and config.get("Subnet"):
        address = str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    if address:
        with socket.socket() as probe:
            try:
                probe.bind((address, 0))  # an address of this machine
                return address
            except OSError:
                pass
    return "127.0.0.1"


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class MlflowServer:
    """`mlflow server` on ``host``:``port`` with its store in ``store``; artifacts are uploaded
    through the server, so a client needs no access to the folder."""

    def __init__(self, store, host=None, port=None):
        self.store = os.path.abspath(store)
        self.host = host or docker_host_address()
        self.port = port or free_port(self.host)
        self.uri = f"http://{self.host}:{self.port}"
        os.makedirs(self.store, exist_ok=True)
        self.log_path = os.path.join(self.store, "server.log")
        mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [
                    mlflow,
                    "server",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--backend-store-uri",
                    f"sqlite:///{self.store}/mlflow.db",
                    "--artifacts-destination",
                    os.path.join(self.store, "artifacts"),
                    "--workers",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=5) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        self.close()
        with open(self.log_path) as f:
            raise RuntimeError(f"mlflow server did not start at {self.uri}:\n{f.read()[-3000:]}")

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self.wait_ready()

    def __exit__(self, *exc):
        self.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="build/mlflow")
    parser.add_argument("--host", help="the address to listen on (default: Docker's bridge)")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    with MlflowServer(args.store, args.host, args.port) as server:
        print(
            f"MLflow UI and tracking server: {server.uri} (store {server.store}); Ctrl-C stops it"
        )
        try:
            server.process.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
