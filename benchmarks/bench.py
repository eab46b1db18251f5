"""`make bench`: this image against what users would pick instead, side by side in one run.

Serving: the image's `serve` and the peer (AWS's stock PyTorch serving stack: the
sagemaker-pytorch-inference toolkit on TorchServe with its default handler, docker/peer), one
after the other on the same TorchScript model, each measured from `docker run` to a healthy
/ping and to its first answer, then under bounded closed-loop load on loopback. Training: the
default model, the original project's baseline and the pytorch/examples network under the same
loop (benchmarks/bench_train.py). Writes results/bench.md and results/bench.png.

    python -m benchmarks.bench --image sagemaker-mnist:latest --peer sagemaker-mnist-peer:latest
"""

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time

import numpy as np

from benchmarks import bench_train
from benchmarks.bench_serve import WARM_UP_S, warm_up
from benchmarks.reporting import write_report
from local_test import ROOT
from local_test.job_files import load_test_set
from local_test.load import load
from local_test.server import free_port, npy

DOCKER = os.environ.get("DOCKER", "docker")
# The peer's default handler takes a tensor as it is: (N, 1, 28, 28) floats in 0-1, which this
# image takes too. PNG is this image's alone.
CONCURRENCY = (1, 8, 32)


def docker(*args, check=True):
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check).stdout


def http(port, path, body=None, content_type=None, timeout=60):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request(
        "POST" if body is not None else "GET",
        path,
        body,
        {"Content-Type": content_type} if content_type else {},
    )
    response = connection.getresponse()
    return response.status, response.read()


def start(image, model_dir, name):
    """(port, seconds to /ping 200, seconds to the first 200 from /invocations).

    Host networking, for both servers: the figures are the servers', without the cost that
    Docker's userland proxy adds to every request when --publish puts it in front."""
    docker("rm", "--force", name, check=False)
    port = free_port()
    started = time.monotonic()
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--env",
        f"SAGEMAKER_BIND_TO_PORT={port}",
        "--volume",
        f"{model_dir}:/opt/ml/model:ro",
        image,
        "serve",
    )
    ping, checked = None, started
    body = json.dumps(np.zeros((1, 1, 28, 28)).tolist()).encode()
    while time.monotonic() - started < 300:
        try:
            if ping is None and http(port, "/ping", timeout=5)[0] == 200:
                ping = time.monotonic() - started
            if ping is not None and http(port, "/invocations", body, "application/json")[0] == 200:
                return port, ping, time.monotonic() - started
        except OSError:
            # Once a second, not at every refused connection: a docker command costs CPU
            # that the start being measured would share.
            if time.monotonic() - checked >= 1:
                checked = time.monotonic()
                if docker("inspect", "--format", "{{.State.Running}}", name).strip() != "true":
                    break
        time.sleep(0.05)
    raise RuntimeError(f"{image} did not answer:\n{docker('logs', name, check=False)[-3000:]}")


def payloads(images):
    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(255 - images[0]).save(png, format="PNG")  # dark ink on white paper
    x = (images.astype(np.float32) / 255.0)[:, None]
    return {
        "one image, JSON": (json.dumps(x[:1].tolist()).encode(), "application/json", 1),
        "one image, PNG": (png.getvalue(), "image/png", 1),
        "256 images, npy": (npy(x[:256]), "application/x-npy", 256),
    }


MALFORMED = [
    (b"[[1, 2], [3]]", "application/json"),
    (b"", "application/json"),
    (b"hello", "text/plain"),
    (b"\x93NUMPY junk", "application/x-npy"),
]


def check_answers(port, body, media, labels):
    """Fails unless ours names the digits of the batch ``body``: timed requests are worth
    reporting only if they carry real digits."""
    status, answer = http(port, "/invocations", body, media)
    if status != 200:
        raise RuntimeError(f"the accuracy check got {status}: {answer[:500]!r}")
    predicted = np.array([p["label"] for p in json.loads(answer)["predictions"]])
    right = float(np.mean(predicted == labels))
    if right < 0.9:
        raise RuntimeError(f"ours got {right:.1%} of the test images right: not the test digits")


def measure(image, model_dir, name, images, seconds, concurrency, warm_up_s, labels=None):
    """``labels``: the digits of ``images``, checked against the answers (ours only: the
    peer's handler answers in its own format)."""
    port, ping, first = start(image, model_dir, name)
    rows = {"start_ping_s": ping, "start_first_answer_s": first, "loads": {}}
    try:
        rows["malformed"] = [http(port, "/invocations", b, t)[0] for b, t in MALFORMED]
        bodies = payloads(images)
        if labels is not None:
            check_answers(port, *bodies["256 images, npy"][:2], labels)
        warm_up(port, *bodies["one image, JSON"][:2], warm_up_s)
        for label, (body, media, count) in bodies.items():
            load(port, body, media, 1, 1.0)  # warm-up
            for c in concurrency:
                r = load(port, body, media, c, seconds)
                r["images_per_second"] = r["rps"] * count * (r["errors"] == 0)
                rows["loads"][(label, c)] = r
                print(f"{image}: {label}, concurrency {c}: {r}", flush=True)
    finally:
        docker("rm", "--force", name, check=False)
    rows["size_gb"] = int(docker("image", "inspect", "--format", "{{.Size}}", image)) / 1e9
    return rows


def serving_report(ours, peer):
    lines = [
        (
            "| load | concurrency | ours p50 / p99 (ms) | ours req/s | peer p50 / p99 (ms) "
            "| peer req/s | req/s ratio | errors (ours, peer) |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for (label, c), r in ours["loads"].items():
        p = peer["loads"][(label, c)]
        ok = p["errors"] < p["requests"]
        ratio = f"{r['rps'] / p['rps']:.1f}x" if ok and p["errors"] == 0 else "peer failed"
        peer_cells = f"{p['p50_ms']:.1f} / {p['p99_ms']:.1f} | {p['rps']:.0f}" if ok else "- | -"
        lines.append(
            f"| {label} | {c} | {r['p50_ms']:.2f} / {r['p99_ms']:.1f} | {r['rps']:.0f} "
            f"| {peer_cells} | {ratio} | {r['errors']}, {p['errors']} |"
        )
    lines += [
        "",
        "| | ours | peer |",
        "|---|---|---|",
        (
            f"| `docker run` to /ping 200 (s) | {ours['start_ping_s']:.1f} | "
            f"{peer['start_ping_s']:.1f} |"
        ),
        (
            f"| `docker run` to the first answer (s) | {ours['start_first_answer_s']:.1f} | "
            f"{peer['start_first_answer_s']:.1f} |"
        ),
        f"| image size (GB) | {ours['size_gb']:.2f} | {peer['size_gb']:.2f} |",
        (
            f"| malformed requests ({', '.join(t for _, t in MALFORMED)}) | "
            f"{ours['malformed']} | {peer['malformed']} |"
        ),
    ]
    return "\n".join(lines)


def chart(ours, peer, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ours["loads"] if k[0] != "one image, PNG"]
    labels = [f"{k[0].split(',')[0]}\nc={k[1]}" for k in keys]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(keys))
    for offset, rows, colour, name in (
        (-0.2, ours, "#2e86c1", "this image"),
        (0.2, peer, "#aab7b8", "stock PyTorch stack"),
    ):
        rps = [rows["loads"][k]["rps"] if rows["loads"][k]["errors"] == 0 else 0 for k in keys]
        p99 = [rows["loads"][k]["p99_ms"] if rows["loads"][k]["errors"] == 0 else 0 for k in keys]
        axes[0].bar(x + offset, rps, 0.4, color=colour, label=name)
        axes[1].bar(x + offset, p99, 0.4, color=colour, label=name)
    for ax, title in (
        (axes[0], "requests/s (higher is better)"),
        (axes[1], "p99 latency, ms (lower is better)"),
    ):
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=8)
    axes[1].set_yscale("log")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


TRAIN_RUNS = [
    ("default (bncnn)", {}),
    ("default, one epoch", {"epochs": 1}),  # the schedule ends in the first epoch
    ("baseline, original settings", {"model": "baseline"}),
    ("pytorch/examples network, 5 epochs", {"model": "examples", "epochs": 5}),
]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--image", default="sagemaker-mnist:latest")
    parser.add_argument("--peer", default="sagemaker-mnist-peer:latest")
    parser.add_argument("--data", default=os.path.join(ROOT, "data"))
    parser.add_argument("--seconds", type=float, default=10.0, help="per load measurement")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few seconds per measurement and one epoch a model (CI)",
    )
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--out", default=os.path.join(ROOT, "results"))
    args = parser.parse_args()
    images, labels = (part[:256] for part in load_test_set(args.data))
    seconds = 2.0 if args.quick else args.seconds
    concurrency = (1, 8) if args.quick else CONCURRENCY

    work = tempfile.mkdtemp(
        prefix="bench-",
        dir=os.path.join(ROOT, "build") if os.path.isdir(os.path.join(ROOT, "build")) else None,
    )
    train_rows = []
    if not args.skip_training:
        runs = TRAIN_RUNS[:1] if args.quick else TRAIN_RUNS  # quick: the default, 1 epoch
        runs = [(name, dict(hp, epochs=1) if args.quick else hp) for name, hp in runs]
        train_rows = [bench_train.bench(name, hp, args.data, work) for name, hp in runs]
    model_dir = os.path.join(work, "serving_model")
    if train_rows:
        model_source = train_rows[0]["model_dir"]
    else:  # one quick epoch gives a model to serve
        quick = {"epochs": 1, "hidden_channels": 16}
        model_source = bench_train.bench("serving", quick, args.data, work)["model_dir"]
    shutil.copytree(model_source, model_dir)

    warm_up_s = 2.0 if args.quick else WARM_UP_S
    ours = measure(
        args.image, model_dir, "bench-ours", images, seconds, concurrency, warm_up_s, labels
    )
    peer = measure(args.peer, model_dir, "bench-peer", images, seconds, concurrency, warm_up_s)

    import torch

    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"client on the same machine; {seconds:g} s a load"
    )
    report = [
        f"# Benchmark ({machine})",
        "",
        (
            "## Serving: this image against the stock "
            "PyTorch stack (sagemaker-pytorch-inference on TorchServe)"
        ),
        "",
        serving_report(ours, peer),
    ]
    if train_rows:
        report += ["", "## Training (same loop and threads)", "", bench_train.table(train_rows)]
        report += ["", bench_train.against_examples(train_rows)]
    os.makedirs(args.out, exist_ok=True)
    chart(ours, peer, os.path.join(args.out, "bench.png"))
    write_report(os.path.join(args.out, "bench.md"), "\n".join(report) + "\n")
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(
            {
                "ours": {**ours, "loads": {f"{k[0]} c{k[1]}": v for k, v in ours["loads"].items()}},
                "peer": {**peer, "loads": {f"{k[0]} c{k[1]}": v for k, v in peer["loads"].items()}},
                "training": train_rows,
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
