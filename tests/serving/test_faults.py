"""Faults on the real multi-model-server: the process the workers fork from killed, a request
past the timeout, a long request beside /ping, and a storm of garbage through the user's own
input_fn."""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from local_test.server import LocalServer, npy
from tests.container.fuzz import bad_requests
from tests.serving.test_user_code import model_with_code

NPY = "application/x-npy"
# A user's input_fn for the timeout tests: "sleep S" sleeps S seconds in the worker.
SLOW = """
import time
import numpy as np

def input_fn(body, content_type):
    if body.startswith(b"sleep"):
        time.sleep(float(body.split()[1]))
    return np.zeros((1, 1, 28, 28), np.float32)
"""
# A user's input_fn that takes npy only and raises whatever numpy raises on anything else.
STRICT = """
import io
import numpy as np

def input_fn(body, content_type):
    array = np.load(io.BytesIO(body), allow_pickle=False)
    return np.asarray(array, np.float32).reshape(-1, 1, 28, 28) / 255
"""
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))


def parent_pid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def worker_tree(srv):
    """(pid of the Python process the workers fork from, [worker pids])."""
    processes = srv.processes()
    python = [p for p, argv in processes.items() if any("model_service_worker" in a for a in argv)]
    java = {p for p, argv in processes.items() if os.path.basename(argv[0]) == "java"}
    parents = [p for p in python if parent_pid(p) in java]
    assert len(parents) == 1, processes
    return parents[0], [p for p in python if parent_pid(p) == parents[0]]


def kill_worker_tree(srv):
    parent, workers = worker_tree(srv)
    for pid in [parent, *workers]:
        os.kill(pid, signal.SIGKILL)
    return time.monotonic()


def wait_unhealthy(srv, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = srv.ping()
        if answer is None or answer[0] != 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"/ping still 200 {timeout} s after the workers died: {srv.pings[-5:]}")


def test_the_workers_parent_killed_with_its_workers_restarts_the_server(
    tmp_path, trained_model_dir, mnist
):
    """Left alone, multi-model-server answers /ping 503 for good: no worker can start again."""
    x, y = mnist["x_test"][:1000], mnist["y_test"][:1000]
    srv = LocalServer.serve(
        trained_model_dir,
        tmp_path,
        SAGEMAKER_MODEL_SERVER_WORKERS="2",
        SAGEMAKER_RESTART_UNHEALTHY_AFTER_S="2",
    )
    try:
        # Every worker forked first: one forked after the kill would keep the server healthy.
        srv.wait_healthy(workers=srv.workers)
        killed = kill_worker_tree(srv)
        wait_unhealthy(srv)
        srv.wait_healthy(timeout=90)
        back_s = time.monotonic() - killed
        status, _, body = srv.invoke(npy(x), NPY)
        assert status == 200, body
        labels = [p["label"] for p in json.loads(body)["predictions"]]
        assert np.mean(np.array(labels) == y) > 0.97
        assert srv.process.poll() is None
        with open(srv.log_path) as f:
            assert "restarting multi-model-server" in f.read()
        print(f"\nthe workers' parent and workers killed: healthy again in {back_s:.1f} s")
    finally:
        srv.close()


def test_a_restart_that_cannot_load_the_model_ends_serve_non_zero(tmp_path, trained_model_dir):
    srv = LocalServer.serve(
        trained_model_dir,
        tmp_path,
        SAGEMAKER_MODEL_SERVER_WORKERS="1",
        SAGEMAKER_RESTART_UNHEALTHY_AFTER_S="2",
    )
    try:
        srv.wait_healthy()
        for saved in (tmp_path / "opt_ml" / "model").glob("model.pt*"):
            saved.write_bytes(b"not a model any more")  # what the restarted server loads
        kill_worker_tree(srv)
        assert srv.wait_exit(timeout=120) not in (None, 0), srv.output()
        with open(srv.log_path) as f:
            output = f.read()
        assert "restarting multi-model-server" in output and "cannot serve the model" in output
        assert not srv.processes(), srv.processes()
    finally:
        srv.close()


def test_a_request_past_the_timeout_is_a_504_after_seconds_and_the_worker_lives_on(
    tmp_path, trained_model_dir
):
    """multi-model-server reads its timeout in minutes; the setting means seconds here."""
    model = model_with_code(tmp_path, trained_model_dir, {"inference.py": SLOW})
    srv = LocalServer.serve(
        model,
        tmp_path / "server",
        SAGEMAKER_PROGRAM="inference.py",
        SAGEMAKER_MODEL_SERVER_WORKERS="1",
        SAGEMAKER_MODEL_SERVER_TIMEOUT="2",
    )
    try:
        srv.wait_healthy()
        started = time.monotonic()
        status, headers, body = srv.invoke(b"sleep 30", NPY, timeout=60)
        took = time.monotonic() - started
        assert status == 504 and headers["content-type"] == "application/json", body
        error = json.loads(body)["error"]
        assert "2 s timeout (SAGEMAKER_MODEL_SERVER_TIMEOUT)" in error
        assert 2 <= took < 6, took
        worker = worker_tree(srv)[1]
        status, _, body = srv.invoke(b"sleep 1", NPY)  # under the limit, on the same worker
        assert status == 200 and len(json.loads(body)["predictions"]) == 1
        assert worker_tree(srv)[1] == worker
    finally:
        srv.close()


def test_ping_answers_200_while_the_only_worker_runs_a_long_request(tmp_path, trained_model_dir):
    """Asynchronous endpoints: a request may run for minutes, and the platform keeps pinging."""
    model = model_with_code(tmp_path, trained_model_dir, {"inference.py": SLOW})
    srv = LocalServer.serve(
        model,
        tmp_path / "server",
        SAGEMAKER_PROGRAM="inference.py",
        SAGEMAKER_MODEL_SERVER_WORKERS="1",
        SAGEMAKER_MODEL_SERVER_TIMEOUT="3600",
    )
    try:
        srv.wait_healthy()
        answers = []
        long = threading.Thread(target=lambda: answers.append(srv.invoke(b"sleep 6", NPY)))
        long.start()
        time.sleep(1)
        pings = []
        while long.is_alive():
            pings.append(srv.ping()[0])
            time.sleep(0.5)
        long.join()
        assert answers[0][0] == 200
        assert len(pings) >= 5 and set(pings) == {200}, pings
    finally:
        srv.close()


@pytest.fixture(scope="module")
def strict_server(trained_model_dir, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("strict")
    model = model_with_code(tmp_path, trained_model_dir, {"inference.py": STRICT})
    srv = LocalServer.serve(
        model,
        tmp_path / "server",
        SAGEMAKER_PROGRAM="inference.py",
        SAGEMAKER_MODEL_SERVER_WORKERS="2",
        SAGEMAKER_MAX_PAYLOAD_IN_MB="2",
        SAGEMAKER_MODEL_SERVER_TIMEOUT="20",
    )
    try:
        # Both forked: the test compares the workers before and after.
        srv.wait_healthy(workers=srv.workers)
        yield srv
    finally:
        srv.close()


def test_a_user_input_fn_that_raises_on_garbage_answers_json_and_keeps_its_workers(
    strict_server, mnist
):
    srv = strict_server
    workers = sorted(worker_tree(srv)[1])
    answers = {}

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(bad_requests(2 * 1024 * 1024))
    def storm(request):
        headers, body = request
        status, answer_headers, answer = srv.invoke(
            body, headers.get("Content-Type"), headers.get("Accept"), timeout=60
        )
        answers[status] = answers.get(status, 0) + 1
        if status != 200:  # a body the user's input_fn reads may well be answered
            assert 400 <= status < 600, (status, headers, body)
            assert answer_headers["content-type"] == "application/json", answer[:300]
            assert json.loads(answer)["error"], answer[:300]

    storm()
    x = mnist["x_test"][:10]
    status, _, body = srv.invoke(npy(x), NPY)
    assert status == 200 and len(json.loads(body)["predictions"]) == 10
    assert sorted(worker_tree(srv)[1]) == workers  # none died and was replaced
    assert srv.ping()[0] == 200
    print(f"\n{sum(answers.values())} garbage requests through a user's input_fn: {answers}")


def test_an_error_message_with_non_ascii_text_is_a_400_and_kills_no_worker(server):
    """The model server frames a status phrase by its length in characters and sends its UTF-8
    bytes: an error that quoted "À" from the body used to kill the worker."""
    workers = sorted(worker_tree(server)[1])
    status, headers, body = server.invoke("\u0080\u00c0,ü".encode(), "text/csv")
    assert status == 400 and headers["content-type"] == "application/json"
    assert "\u00c0" in json.loads(body)["error"]
    assert sorted(worker_tree(server)[1]) == workers
