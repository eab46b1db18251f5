"""The image, built by `make build` on the base that `make base-image` makes from Debian packages
(no registry needed) and from the wheelhouse (no package index needed), run by a real Docker
engine the way SageMaker runs it. Without a reachable engine these tests skip, loudly."""
import os
import subprocess
import time

import pytest

from local_test.opt_ml import ROOT

DOCKER = os.environ.get("DOCKER", "docker")
IMAGE = "sagemaker-mnist"
TAG = "test"
# SageMaker gives a stopped training job this long after SIGTERM before it kills it.
STOP_GRACE_S = 120

_skipped = []


def engine_problem():
    try:
        answer = subprocess.run([DOCKER, "info", "--format", "{{.ServerVersion}}"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"no Docker client {DOCKER!r} ({e})"
    if answer.returncode != 0:
        return f"no Docker engine reachable ({answer.stderr.strip()[:200]})"
    return None


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.write_sep("!", f"CONTAINER TESTS SKIPPED: {_skipped[0]}; start dockerd "
                                        "(or set DOCKER=) to run them", red=True, bold=True)


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    """IMAGE:TAG, built from the air-gapped base; the build log goes to the tmp folder."""
    problem = engine_problem()
    if problem:
        _skipped.append(problem)
        pytest.skip(f"CONTAINER TESTS SKIPPED: {problem}")
    log = tmp_path_factory.mktemp("build") / "build.log"
    started = time.monotonic()
    with open(log, "w") as f:
        code = subprocess.call(
            ["make", "base-image", "wheelhouse", "build", f"DOCKER={DOCKER}", f"IMAGE={IMAGE}",
             f"TAG={TAG}", f"BASE_IMAGE={IMAGE}-base:bookworm"],
            cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    assert code == 0, f"make build failed:\n{log.read_text()[-5000:]}"
    print(f"image built in {time.monotonic() - started:.0f} s")
    return f"{IMAGE}:{TAG}"


def docker(*args, timeout=120, check=True):
    answer = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert answer.returncode == 0, f"docker {' '.join(args)}: {answer.stderr}"
    return answer


def train_argv(image, base, name):
    """`docker run IMAGE train` with SageMaker's /opt/ml layout mounted, as host algo-1."""
    return [DOCKER, "run", "--rm", "--name", name, "--hostname", "algo-1",
            "-v", f"{base}:/opt/ml", image, "train"]


def run_train(image, base, name, timeout=600):
    answer = subprocess.run(train_argv(image, base, name), capture_output=True, text=True,
                            timeout=timeout)
    return answer.returncode, answer.stdout + answer.stderr


def remove(name):
    docker("rm", "--force", name, check=False)
