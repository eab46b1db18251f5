"""Starts `python -m container serve` on a trained model and measures it over loopback: time to a
healthy /ping, then latency and throughput for one JSON image at several concurrencies, and
images per second for a batch of 1,000 as npy, one request at a time and as many in flight as
the server tells batch transform to send (GET /execution-parameters: one a worker), and for
4,000 as npy one request at a time. Prints a Markdown table.

    python -m benchmarks.bench_serve --model-dir build/opt_ml/model --data data

The load is bounded: each client process sends requests one after another on one keep-alive
connection for --seconds, then stops. The measurements start after WARM_UP_S of load.

Each load also runs, right after, against the floor: the same model server with the same
settings and a trivial handler (benchmarks/floor_handler.py). This machine's speed drifts from
one run to the next, so the two side by side say more than either alone. For the npy batches
the floor is what the server itself costs to carry such a body there and an answer back.
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import tempfile

from benchmarks.reporting import write_report
from container.serving.model_server import (
    model_server_command,
    model_server_environment,
    server_properties,
    write_properties,
)
from container.serving.parameters import BIND_TO_PORT_ENV, ServerSettings
from local_test import server as harness
from local_test.job_files import load_test_set
from local_test.load import load

# Load before measuring, long enough for a model server's JVM to finish compiling its hot code
# (a stock one, with C2, takes about that long).
WARM_UP_S = 20


def warm_up(port, body, content_type, seconds=WARM_UP_S):
    load(port, body, content_type, 8, seconds)


def concurrent_transforms(port):
    """How many requests at once batch transform sends this server: its answer to
    GET /execution-parameters."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/execution-parameters")
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"/execution-parameters answered {response.status}: {body[:200]!r}")
    return json.loads(body)["MaxConcurrentTransforms"]


FLOOR_HANDLER = "benchmarks.floor_handler:handle"


def floor_command(port, workdir):
    """(argv, environment) of the model server as `serve` configures it (from the same
    SAGEMAKER_* variables), with the trivial handler of benchmarks/floor_handler.py and an empty
    model folder."""
    settings = ServerSettings.from_environ({**os.environ, BIND_TO_PORT_ENV: str(port)})
    properties = server_properties(settings, handler=FLOOR_HANDLER)
    config, model_dir = os.path.join(workdir, "mms.properties"), os.path.join(workdir, "model")
    os.makedirs(model_dir)
    os.makedirs(os.path.join(workdir, "tmp"))
    write_properties(properties, config)
    env = model_server_environment(TMPDIR=os.path.join(workdir, "tmp"))
    return model_server_command(config, model_dir), env


def start_server(model_dir, port, workdir, floor=False):
    """The image's `serve` on ``model_dir`` (or the floor), healthy, and the seconds it took."""
    os.makedirs(workdir, exist_ok=True)
    argv, env = (
        floor_command(port, workdir) if floor else harness.serve_command(model_dir, port, workdir)
    )
    return harness.start(argv, env, workdir, port)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model-dir", default="build/opt_ml/model")
    parser.add_argument("--data", default="data")
    parser.add_argument("--port", type=int, default=8180)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--out", default="results/serve_bench.md")
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run each load against the trivial handler too",
    )
    args = parser.parse_args()

    images = load_test_set(args.data)[0]
    one_json = json.dumps(images[0].tolist()).encode()
    batch, large_batch = harness.npy(images[:1000]), harness.npy(images[:4000])
    workdir = tempfile.mkdtemp(prefix="bench_serve_")
    server, startup = start_server(args.model_dir, args.port, workdir)
    servers, ports, rows = [server], {"ours": args.port}, []
    try:
        if args.floor:  # started after ours, so that it does not slow our start-up
            floor_dir = os.path.join(workdir, "floor")
            servers.append(start_server(None, args.port + 2, floor_dir, floor=True)[0])
            ports["floor"] = args.port + 2
        for port in ports.values():
            warm_up(port, one_json, "application/json")
        loads = [
            (f"one image, JSON, concurrency {c}", 1, one_json, "application/json", c)
            for c in args.concurrency
        ]
        # One request at a time, as one client sends them, and as many at once as batch
        # transform sends (2 on two cores).
        in_flight = concurrent_transforms(args.port)
        batches = [(1000, batch, 1)] + [(1000, batch, in_flight)] * (in_flight > 1)
        loads += [
            (f"{size:,} images, npy, concurrency {c}", size, body, "application/x-npy", c)
            for size, body, c in batches + [(4000, large_batch, 1)]
        ]
        for name, size, body, content_type, concurrency in loads:
            r = {
                who: load(port, body, content_type, concurrency, args.seconds)
                for who, port in ports.items()
            }
            rows.append((name, size, r["ours"], r.get("floor")))
            print(rows[-1], flush=True)
    finally:
        for server in servers:
            server.close()
        shutil.rmtree(workdir, ignore_errors=True)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, client on the same machine"
    lines = [
        (
            f"Serving benchmark ({machine}); start to healthy /ping: {startup:.1f} s; floor: "
            f"the same server with a trivial handler ({FLOOR_HANDLER})"
        ),
        "",
        (
            "| load | p50 (ms) | p99 (ms) | requests/s | images/s | errors "
            "| floor p50 (ms) | floor requests/s | floor images/s |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, size, r, floor in rows:
        floor_cells = (
            f"{floor['p50_ms']:.2f} | {floor['rps']:.0f} | {floor['rps'] * size:.0f}"
            if floor
            else " | | "
        )
        lines.append(
            f"| {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps']:.0f} "
            f"| {r['rps'] * size:.0f} | {r['errors']} | {floor_cells} |"
        )
    report = "\n".join(lines) + "\n"
    write_report(args.out, report)


if __name__ == "__main__":
    main()
