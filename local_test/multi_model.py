"""`make local-mme`: the original experiment's five widths behind one multi-model endpoint.

SDK local mode does not emulate multi-model endpoints, so this runs the image the way SageMaker
does: `docker run -e SAGEMAKER_MULTI_MODEL=true IMAGE serve` with the models under
/opt/ml/models, then SageMaker's own calls (POST /models, POST /models/NAME/invoke).

    python -m local_test.multi_model --image sagemaker-mnist:latest [--widths 2 5 10 20 32]
"""

import argparse
import functools
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

import numpy as np

from local_test import ROOT
from local_test.job_files import load_test_set
from local_test.opt_ml import make_opt_ml
from local_test.server import DOCKER, DockerServer, npy, request
from local_test.sweep import SWEEP_WIDTHS

# Where SageMaker puts each model of a multi-model endpoint, and where its load request points.
MODELS_DIR = "/opt/ml/models"
TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"


def model_url(name):
    return f"{MODELS_DIR}/{name}/model"


class MultiModelEndpoint:
    """SageMaker's calls to a container in multi-model mode at ``url``."""

    def __init__(self, url):
        self.url = url

    def load(self, name, url=None, timeout=120):
        """(status, JSON answer) of loading ``name`` from ``url`` (SageMaker's folder for it)."""
        body = json.dumps({"model_name": name, "url": url or model_url(name)}).encode()
        status, _, answer = request(
            self.url + "/models",
            body,
            {"Content-Type": "application/json"},
            method="POST",
            timeout=timeout,
        )
        return status, json.loads(answer)

    def unload(self, name):
        status, _, answer = request(self._model(name), method="DELETE")
        return status, json.loads(answer)

    def describe(self, name):
        status, _, answer = request(self._model(name))
        return status, json.loads(answer)

    def models(self, limit=None):
        """Every loaded model's name, following the list's pages."""
        names, token = [], None
        while True:
            query = {k: v for k, v in (("limit", limit), ("next_page_token", token)) if v}
            status, _, answer = request(
                self.url + "/models" + ("?" + urllib.parse.urlencode(query) if query else "")
            )
            assert status == 200, answer
            page = json.loads(answer)
            names += [m["modelName"] for m in page["models"]]
            token = page.get("nextPageToken")
            if not token:
                return names

    def invoke(self, name, body, content_type, accept=None, timeout=30):
        """(status, headers, body) of an InvokeEndpoint call with TargetModel ``name``."""
        headers = {"Content-Type": content_type, TARGET_MODEL_HEADER: f"{name}.tar.gz"}
        if accept:
            headers["Accept"] = accept
        return request(self._model(name) + "/invoke", body, headers, "POST", timeout)

    def ping(self):
        try:
            return request(self.url + "/ping", timeout=5)[0]
        except OSError:
            return None

    def _model(self, name):
        return f"{self.url}/models/{urllib.parse.quote(name, safe='')}"


class Container(DockerServer):
    """`docker run IMAGE serve` in multi-model mode, ``models_dir`` as /opt/ml/models, on a
    loopback port; with ``single``, a single-model endpoint on the model folder ``models_dir``
    (/opt/ml/model), to compare with."""

    def __init__(self, image, models_dir, docker=DOCKER, single=False, **environ):
        env = environ if single else {"SAGEMAKER_MULTI_MODEL": "true", **environ}
        target = "/opt/ml/model" if single else MODELS_DIR
        super().__init__(image, {models_dir: target}, env, docker=docker)
        self.endpoint = MultiModelEndpoint(self.url)

    def memory_mb(self):
        """The container's memory in use (its cgroup's count, less reclaimable file cache)."""
        script = (
            "if [ -f /sys/fs/cgroup/memory.current ]; then "
            "echo $(cat /sys/fs/cgroup/memory.current) "
            "$(awk '/^inactive_file/ {print $2}' /sys/fs/cgroup/memory.stat); else "
            "echo $(cat /sys/fs/cgroup/memory/memory.usage_in_bytes) "
            "$(awk '/^total_inactive_file/ {print $2}' /sys/fs/cgroup/memory/memory.stat); fi"
        )
        used, cache = map(int, self.shell(script).split())
        return (used - cache) / 2**20


def train_widths(image, data, folder, widths, epochs, docker=DOCKER):
    """The baseline net at each width, trained by `docker run IMAGE train` into
    folder/w<width>/model (SageMaker's layout of a multi-model endpoint's models); a width
    already there is reused. Their names."""
    names = []
    for width in widths:
        name = f"w{width}"
        model_dir = os.path.join(folder, name, "model")
        names.append(name)
        if os.path.exists(os.path.join(model_dir, "model.pth")):
            print(f"{name}: reusing {model_dir}", flush=True)
            continue
        base = make_opt_ml(
            os.path.join(folder, f".train-{name}"),
            {"model": "baseline", "hidden_channels": width, "epochs": epochs},
            {c: os.path.join(data, c) for c in ("training", "testing")},
            hosts=("algo-1",),
            copy=True,
        )
        print(f"{name}: training the baseline net, hidden_channels={width}", flush=True)
        volume = f"{os.path.abspath(base)}:/opt/ml"
        done = subprocess.run(
            [docker, "run", "--rm", "--hostname", "algo-1", "-v", volume, image, "train"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            sys.exit(f"{name}: training failed:\n{(done.stdout + done.stderr)[-3000:]}")
        os.makedirs(os.path.dirname(model_dir), exist_ok=True)
        os.rename(os.path.join(base, "model"), model_dir)
    return names


def accuracy(invoke, images, labels, batch=1000):
    """Test accuracy (%) of the model that ``invoke(body, content_type, accept)`` reaches, the
    test set sent in npy batches."""
    correct = 0
    for start in range(0, len(images), batch):
        status, _, body = invoke(
            npy(images[start : start + batch]), "application/x-npy", "application/x-npy"
        )
        if status != 200:
            raise RuntimeError(f"{status} {body[:300]!r}")
        probabilities = np.load(io.BytesIO(body))
        correct += int((probabilities.argmax(1) == labels[start : start + batch]).sum())
    return 100 * correct / len(images)


def _single_invoke(url, body, content_type, accept):
    headers = {"Content-Type": content_type, "Accept": accept}
    return request(url + "/invocations", body, headers, "POST")


def latency(send, concurrency, requests=800):
    """p50 latency (ms) of ``requests`` calls of ``send()`` (which returns the status) from
    ``concurrency`` threads, after ``requests // 4`` untimed ones (the server's JIT warms up),
    and the statuses that were not 200."""
    for _ in range(requests // 4):
        send()
    times, failures, lock = [], [], threading.Lock()

    def client(count):
        for _ in range(count):
            started = time.perf_counter()
            status = send()
            with lock:
                times.append(time.perf_counter() - started)
                if status != 200:
                    failures.append(status)

    threads = [
        threading.Thread(target=client, args=(requests // concurrency,)) for _ in range(concurrency)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 1000 * statistics.median(times), failures


def _status(call, *args):
    return call(*args)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--image", default="sagemaker-mnist:latest")
    parser.add_argument("--data", default=os.path.join(ROOT, "data"))
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "mme"))
    parser.add_argument("--widths", type=int, nargs="+", default=list(SWEEP_WIDTHS))
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)

    models = os.path.join(args.work, "models")
    names = train_widths(args.image, args.data, models, args.widths, args.epochs)
    images, labels = load_test_set(args.data)
    one = json.dumps(images[0].tolist()).encode()
    rows = []
    container = Container(args.image, models)
    try:
        container.wait_healthy()
        endpoint = container.endpoint
        for name in names:
            before = container.memory_mb()
            status, answer = endpoint.load(name)
            if status != 200:
                sys.exit(f"{name}: load answered {status}: {answer}")
            memory = container.memory_mb() - before
            row = [name, f"{answer['load_ms'] / 1000:.1f}", f"{memory:.0f}"]
            invoke = functools.partial(endpoint.invoke, name)
            row.append(f"{accuracy(invoke, images, labels):.2f}")
            for concurrency in (1, 8):
                send = functools.partial(_status, endpoint.invoke, name, one, "application/json")
                row.append(f"{latency(send, concurrency)[0]:.2f}")
            rows.append(row)
        loaded = endpoint.models()
    finally:
        container.close()
    # The same client against a single-model endpoint on the last model, for comparison.
    single = Container(args.image, os.path.join(models, names[-1], "model"), single=True)
    try:
        single.wait_healthy()
        invoke = functools.partial(_single_invoke, single.endpoint.url)
        row = [f"{names[-1]}, single-model endpoint", "-", "-"]
        row.append(f"{accuracy(invoke, images, labels):.2f}")
        send = functools.partial(_status, invoke, one, "application/json", "application/json")
        rows.append(row + [f"{latency(send, c)[0]:.2f}" for c in (1, 8)])
    finally:
        single.close()
    print(f"\n{len(names)} models behind one endpoint, all loaded at once: {loaded}\n")
    print("| model | load (s) | memory (MB) | test accuracy (%) | p50 c1 (ms) | p50 c8 (ms) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
