"""The image, built by `make build` on the base that `make base-image` makes from Debian packages
(no registry needed) and from the wheelhouse (no package index needed), run by a real Docker
engine the way SageMaker runs it. Without a reachable engine these tests skip, loudly."""

import subprocess
import time

import pytest

from local_test import ROOT
from local_test.opt_ml import make_opt_ml
from tests.container.helpers import DOCKER, IMAGE, QUICK, TAG, run_train, unique

_skipped = []


def engine_problem():
    try:
        answer = subprocess.run(
            [DOCKER, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"no Docker client {DOCKER!r} ({e})"
    if answer.returncode != 0:
        return f"no Docker engine reachable ({answer.stderr.strip()[:200]})"
    return None


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.write_sep(
            "!",
            f"CONTAINER TESTS SKIPPED: {_skipped[0]}; start dockerd (or set DOCKER=) to run them",
            red=True,
            bold=True,
        )


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
            [
                "make",
                "base-image",
                "wheelhouse",
                "build",
                f"DOCKER={DOCKER}",
                f"IMAGE={IMAGE}",
                f"TAG={TAG}",
                f"BASE_IMAGE={IMAGE}-base:bookworm",
            ],
            cwd=ROOT,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    assert code == 0, f"make build failed:\n{log.read_text()[-5000:]}"
    print(f"image built in {time.monotonic() - started:.0f} s")
    return f"{IMAGE}:{TAG}"


@pytest.fixture(scope="session")
def trained(image, tiny_channel, tmp_path_factory):
    """One short training job in the container; its /opt/ml tree and log."""
    base = make_opt_ml(
        tmp_path_factory.mktemp("opt_ml"),
        QUICK,
        {"training": tiny_channel},
        hosts=("algo-1",),
        copy=True,
    )
    code, log = run_train(image, base, unique("train"))
    assert code == 0, log
    return base, log
