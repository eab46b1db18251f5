"""Reliability of the running container: a storm of malformed requests, workers killed under
load, a steady load, and what the image's layers hold. Sizes are quick here; `make soak` sets
FUZZ_EXAMPLES=10000 and LOAD_SECONDS=60 and prints the figures."""

import json
import os
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings

from local_test.load import load
from tests.container.fuzz import PNG, bad_requests
from tests.container.helpers import Endpoint, docker
from tests.digits import draw_digit, encode

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "15"))
PAYLOAD_LIMIT_MB = 1
TIMEOUT_S = 20  # SAGEMAKER_MODEL_SERVER_TIMEOUT of these endpoints


@pytest.fixture(scope="module")
def endpoint(image, trained):
    base, _ = trained
    server = Endpoint(
        image,
        os.path.join(base, "model"),
        SAGEMAKER_MAX_PAYLOAD_IN_MB=PAYLOAD_LIMIT_MB,
        SAGEMAKER_MODEL_SERVER_TIMEOUT=TIMEOUT_S,
    )
    try:
        server.wait_healthy()
        yield server
    finally:
        server.close()


def predicts_a_seven(server):
    status, _, body = server.invoke(encode(draw_digit(7), "PNG"), {"Content-Type": "image/png"})
    return status == 200 and json.loads(body)["predictions"][0]["label"] == 7


def warm_up(server, requests=200):
    for _ in range(requests):
        server.invoke(PNG, {"Content-Type": "image/png"})


def storm(server, examples, answers):
    """``examples`` malformed requests drawn by hypothesis; each must get a 4xx with a message."""

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(bad_requests(PAYLOAD_LIMIT_MB * 1024 * 1024))
    def one(request):
        headers, body = request
        status, _, answer = server.invoke(body, headers, timeout=TIMEOUT_S + 10)
        answers[status] = answers.get(status, 0) + 1
        assert 400 <= status < 500, (status, headers, body, answer[:500])
        message = json.loads(answer)
        assert message.get("error") or message.get("message"), answer

    one()


def test_a_storm_of_malformed_requests_gets_only_4xx_and_harms_nothing(endpoint):
    answers = {}
    # Warm-up: the server's JVM grows its heap to a plateau (about 300 MB here) over the first
    # thousand or so requests with large bodies, and compiles the error paths; that is no leak.
    storm(endpoint, 1000, answers)
    warm_up(endpoint)
    workers, rss_before = endpoint.worker_pids(), endpoint.rss_mb()
    assert len(workers) >= 1
    started = time.monotonic()
    storm(endpoint, FUZZ_EXAMPLES, answers)
    took = time.monotonic() - started
    warm_up(endpoint)
    rss_after = endpoint.rss_mb()
    print(
        f"\n{sum(answers.values())} malformed requests ({FUZZ_EXAMPLES} measured, in "
        f"{took:.0f} s): {dict(sorted(answers.items()))}; resident memory "
        f"{rss_before:.0f} MB before, {rss_after:.0f} MB after"
    )
    assert endpoint.worker_pids() == workers, "a worker died"
    assert endpoint.ping() == 200
    assert rss_after < rss_before * 1.05, (rss_before, rss_after)
    assert predicts_a_seven(endpoint)


def test_killed_workers_come_back_and_no_request_hangs(endpoint):
    body, headers = PNG, {"Content-Type": "image/png"}
    results, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = endpoint.invoke(body, headers, timeout=TIMEOUT_S + 30)[0]
            except OSError as e:
                status = repr(e)
            results.append((status, time.monotonic() - started))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for c in clients:
        c.start()
    try:
        time.sleep(1)
        workers = endpoint.worker_pids(forked_only=True)
        assert workers
        endpoint.shell("kill -9 " + " ".join(map(str, workers)))  # every worker at once
        pings, deadline = [], time.monotonic() + 90
        while time.monotonic() < deadline:
            pings.append(endpoint.ping())
            if 503 in pings and pings[-1] == 200:
                break
            time.sleep(0.05)
        time.sleep(1)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=TIMEOUT_S + 60)
    assert 503 in pings, f"/ping never said unhealthy: {pings[:20]}"
    assert pings[-1] == 200, f"not healthy again: {pings[-20:]}"
    new_workers = endpoint.worker_pids(forked_only=True)
    assert new_workers and not set(new_workers) & set(workers)
    slowest = max(seconds for _, seconds in results)
    failed = [status for status, _ in results if status != 200]
    print(
        f"\n{len(results)} requests while the workers were killed: {len(failed)} not 200 "
        f"({sorted(set(map(str, failed)))}), slowest {slowest:.1f} s"
    )
    assert slowest < TIMEOUT_S + 5, "a request hung past the timeout"
    assert all(isinstance(s, int) and (s == 200 or s >= 500) for s in failed)
    assert predicts_a_seven(endpoint)


def test_steady_load_has_no_errors_and_memory_settles(endpoint):
    port = int(endpoint.url.rsplit(":", 1)[1])
    body = json.dumps([[0] * 28] * 14 + [[0] * 12 + [255] * 4 + [0] * 12] * 14).encode()
    samples = []

    def sample():
        for _ in range(int(LOAD_SECONDS)):
            time.sleep(1)
            samples.append(endpoint.rss_mb())

    sampler = threading.Thread(target=sample)
    sampler.start()
    result = load(port, body, "application/json", 16, LOAD_SECONDS)
    sampler.join()
    settled = samples[min(9, len(samples) // 3)]
    print(
        f"\n{LOAD_SECONDS:.0f} s at concurrency 16: {result['requests']} requests, "
        f"{result['rps']:.0f}/s, p99 {result['p99_ms']:.1f} ms, {result['errors']} errors; "
        f"resident memory {settled:.0f} MB after {min(10, len(samples) // 3 + 1)} s, "
        f"{samples[-1]:.0f} MB at the end"
    )
    assert result["errors"] == 0
    assert samples[-1] <= settled * 1.05


def test_no_credentials_or_build_time_files_in_any_layer(image):
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "BEGIN CERTIFICATE" not in history and "PRIVATE KEY" not in history
    assert "AWS_SECRET" not in history and "PASSWORD" not in history.upper()
    # The build's CA bundle and wheelhouse were mounted, never copied: no such paths remain.
    leftover = docker(
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "ls -d /run/secrets/* /wheelhouse /tmp/requirements.txt /root/.cache/pip 2>/dev/null; true",
    ).stdout
    assert leftover.strip() == ""
    env = docker("image", "inspect", "--format", "{{json .Config.Env}}", image).stdout
    assert "PIP_CERT" not in env and "SECRET" not in env.upper()
