"""Starts `python -m container serve` on a trained model and measures it over loopback: time to a
healthy /ping, then latency and throughput for one JSON image at several concurrencies, and
images per second for a batch of 1,000 as npy, one and two requests in flight (each worker
takes one). Prints a Markdown table.

    python -m local_test.bench_serve --model-dir build/opt_ml/model --data data

The load is bounded: each client process sends requests one after another on one keep-alive
connection for --seconds, then stops. The measurements start after WARM_UP_S of load.
"""
import argparse
import http.client
import io
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from container.data import load_mnist
from local_test.opt_ml import serve_command
from local_test.reporting import write_report


def _client(port, body, content_type, seconds, queue):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        connection.request("POST", "/invocations", body, headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        errors += response.status != 200
    queue.put((latencies, errors))


def load(port, body, content_type, concurrency, seconds):
    """p50 and p99 (ms), requests/s and errors of ``concurrency`` closed-loop clients."""
    queue = multiprocessing.Queue()
    clients = [multiprocessing.Process(target=_client,
                                       args=(port, body, content_type, seconds, queue))
               for _ in range(concurrency)]
    for c in clients:
        c.start()
    results = [queue.get() for _ in clients]
    for c in clients:
        c.join()
    latencies = np.concatenate([r[0] for r in results]) * 1000
    return {"p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99)),
            "rps": len(latencies) / seconds, "requests": len(latencies),
            "errors": sum(r[1] for r in results)}


# Load before measuring, long enough for a model server's JVM to finish compiling its hot code
# (a stock one with C2 took about 20 s under load here).
WARM_UP_S = 20


def warm_up(port, body, content_type, seconds=WARM_UP_S):
    load(port, body, content_type, 8, seconds)


def ping(port):
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/ping")
        return connection.getresponse().status
    except OSError:
        return None


def start_server(model_dir, port, workdir):
    argv, env = serve_command(model_dir, port, workdir)
    log = open(os.path.join(workdir, "server.log"), "w")
    started = time.perf_counter()
    server = subprocess.Popen(argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    while ping(port) != 200:
        if server.poll() is not None or time.perf_counter() - started > 120:
            server.kill()
            sys.exit(f"server did not become healthy; see {log.name}")
        time.sleep(0.05)
    return server, time.perf_counter() - started


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model-dir", default="build/opt_ml/model")
    parser.add_argument("--data", default="data")
    parser.add_argument("--port", type=int, default=8180)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--out", default="results/serve_bench.md")
    args = parser.parse_args()

    _, test = load_mnist(os.path.join(args.data, "training"), os.path.join(args.data, "testing"))
    images = test.images[:, 0].numpy()
    one_json = json.dumps(images[0].tolist()).encode()
    batch = npy(images[:1000])
    workdir = tempfile.mkdtemp(prefix="bench_serve_")
    server, startup = start_server(args.model_dir, args.port, workdir)
    rows = []
    try:
        warm_up(args.port, one_json, "application/json")
        for concurrency in args.concurrency:
            r = load(args.port, one_json, "application/json", concurrency, args.seconds)
            rows.append((f"one image, JSON, concurrency {concurrency}", r, r["rps"]))
            print(rows[-1], flush=True)
        for c in (1, 2):
            r = load(args.port, batch, "application/x-npy", c, args.seconds)
            rows.append((f"1,000 images, npy, concurrency {c}", r, r["rps"] * 1000))
            print(rows[-1], flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, client on the same machine"
    lines = [f"Serving benchmark ({machine}); start to healthy /ping: {startup:.1f} s", "",
             "| load | p50 (ms) | p99 (ms) | requests/s | images/s | errors |",
             "|---|---|---|---|---|---|"]
    for name, r, images_per_second in rows:
        lines.append(f"| {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps']:.0f} "
                     f"| {images_per_second:.0f} | {r['errors']} |")
    report = "\n".join(lines) + "\n"
    write_report(args.out, report)


if __name__ == "__main__":
    main()
