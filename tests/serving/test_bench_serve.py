"""The floor `make bench-serve` measures against: the model server on `serve`'s settings with
a trivial handler."""

import json

from benchmarks.bench_serve import start_server
from local_test.server import free_port, npy, processes_naming, request

JSON, NPY = "application/json", "application/x-npy"


def test_the_benchmark_floor_answers_and_stops_with_nothing_left_running(tmp_path, mnist):
    """`make bench-serve` runs its trivial handler on `serve`'s settings. Stopping the
    multi-model-server script alone leaves its JVM and Python workers running, so the
    benchmark ends the server's whole process group."""
    port = free_port()
    server, _ = start_server(None, port, str(tmp_path), floor=True)
    url = f"http://127.0.0.1:{port}/invocations"
    x = mnist["x_test"][:5]
    try:
        assert processes_naming(str(tmp_path))
        one = request(
            url, json.dumps(x[0].tolist()).encode(), {"Content-Type": JSON}, method="POST"
        )
        batch = request(url, npy(x), {"Content-Type": NPY}, method="POST")
    finally:
        server.close()
    brightest = x.reshape(5, -1).argmax(axis=1).tolist()
    assert one[0] == 200 and json.loads(one[2]) == {"labels": brightest[:1]}
    assert batch[0] == 200 and json.loads(batch[2]) == {"labels": brightest}
    assert processes_naming(str(tmp_path)) == {}
