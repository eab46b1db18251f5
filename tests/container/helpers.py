"""Helpers for the tests that run the image with a real Docker engine."""

import os
import subprocess
import uuid

from local_test.server import DOCKER, DockerServer, request

IMAGE = "sagemaker-mnist"
TAG = "test"
# SageMaker gives a stopped training job this long after SIGTERM before it kills it.
STOP_GRACE_S = 120


def docker(*args, timeout=120, check=True):
    answer = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert answer.returncode == 0, f"docker {' '.join(args)}: {answer.stderr}"
    return answer


def train_argv(image, base, name):
    """`docker run IMAGE train` with SageMaker's /opt/ml layout mounted, as host algo-1."""
    return [
        DOCKER,
        "run",
        "--rm",
        "--name",
        name,
        "--hostname",
        "algo-1",
        "-v",
        f"{base}:/opt/ml",
        image,
        "train",
    ]


def run_train(image, base, name, timeout=600):
    answer = subprocess.run(
        train_argv(image, base, name), capture_output=True, text=True, timeout=timeout, check=False
    )
    return answer.returncode, answer.stdout + answer.stderr


def remove(name):
    docker("rm", "--force", name, check=False)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# The default batch of 128 is tuned for 60,000 images; 4,000 take a smaller one.
QUICK = {"epochs": 1, "log_interval": 20, "hidden_channels": 8, "batch_size": 32}


class Endpoint(DockerServer):
    """`docker run IMAGE serve` on a model folder, published on a loopback port."""

    def __init__(self, image, model_dir, run_args=(), **environ):
        """``run_args``: more `docker run` options (--read-only, --memory, ...)."""
        super().__init__(image, {model_dir: "/opt/ml/model"}, environ, run_args)

    def invoke(self, body, headers, timeout=30):
        return request(self.url + "/invocations", body, headers, method="POST", timeout=timeout)

    def worker_pids(self, forked_only=False):
        """Process IDs of the model server's Python processes: the one that listens on the
        worker socket and the workers it forks, one per connection (``forked_only``)."""
        out = self.shell(
            "for f in $(grep -l 'model_service_worke[r]' /proc/[0-9]*/cmdline "
            "2>/dev/null); do d=${f%/cmdline}; echo ${d#/proc/} "
            "$(awk '/^PPid/ {print $2}' $d/status); done"
        )
        pids = dict(map(int, line.split()) for line in out.splitlines() if line.strip())
        return sorted(pid for pid, parent in pids.items() if not forked_only or parent in pids)

    def rss_mb(self):
        """Resident memory of every process in the container, in MB."""
        out = self.shell("cat /proc/[0-9]*/status 2>/dev/null | grep VmRSS || true")
        return sum(int(line.split()[1]) for line in out.splitlines()) / 1024

    def peak_memory_mb(self):
        """The most memory the container's cgroup has held since it started (v2 or v1)."""
        out = self.shell(
            "cat /sys/fs/cgroup/memory.peak 2>/dev/null "
            "|| cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes"
        )
        return int(out.split()[0]) / 2**20


def write_wheel(folder, name, version, source):
    """A pure-Python wheel of one module ``name`` holding ``source``, written into ``folder``;
    its file name, as a requirements.txt names it."""
    import base64
    import hashlib
    import zipfile

    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": source,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    wheel = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(folder, wheel), "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel
