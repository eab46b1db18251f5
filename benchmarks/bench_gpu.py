"""The GPU figures, in one process: the default model trained with the whole data set on the
device (test accuracy after each epoch, time to 99.0% and 99.5%), twice, since the first run
also pays for CUDA's start-up; the `best` preset once; images/s of the serving path (predict_fn,
host to device and back) for a batch of 1,000 on the default model; then `serve` started on that
model outside Docker (its own default workers: one a GPU), answering /ping and the test set as
JSON, npy and PNG. Prints and writes a Markdown report.

    python -m benchmarks.bench_gpu --data data

The training entry point is called as the sagemaker-training toolkit calls it, with the
SM_* variables it would set; the toolkit's own start-up (and boto3) is not needed, so this runs
on any host with torch, numpy, matplotlib and Pillow, plus the pure-Python sagemaker_training,
sagemaker_inference and six, and orjson. Without a GPU it runs on the CPU (slowly).
"""

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
import torch

from benchmarks.bench_train import predict_rate, summarize, table
from benchmarks.reporting import write_report
from container.serving.pixels import to_batch
from container.training import parameters as p
from container.training.entry import run
from local_test.job_files import load_test_set, png
from local_test.server import LocalServer, npy


def train_once(data, work, name, hyperparameters):
    """One training run of ``hyperparameters`` in this process: (row, model folder)."""
    base = os.path.join(work, name)
    folders = {
        p.MODEL_DIR_ENV: "model",
        p.OUTPUT_DATA_DIR_ENV: "output",
        p.CHECKPOINT_DIR_ENV: "checkpoints",
    }
    environ = dict(
        os.environ,
        **{env: os.path.join(base, folder) for env, folder in folders.items()},
        **{
            p.TRAINING_CHANNEL_ENV: os.path.join(data, "training"),
            p.TESTING_CHANNEL_ENV: os.path.join(data, "testing"),
            p.NUM_GPUS_ENV: str(torch.cuda.device_count()),
            p.HOSTS_ENV: '["localhost"]',
            p.CURRENT_HOST_ENV: "localhost",
        },
    )
    for folder in folders.values():
        os.makedirs(os.path.join(base, folder))
    argv = [word for k, v in hyperparameters.items() for word in (f"--{k}", str(v))]
    run(argv, environ)
    model_dir = environ[p.MODEL_DIR_ENV]
    return summarize(name, model_dir, environ[p.OUTPUT_DATA_DIR_ENV]), model_dir


def serve_check(model_dir, images, labels, workdir, png_images=200):
    """`serve` on ``model_dir``: start-up to /ping 200, then accuracy and time of the test set
    sent as JSON (1,000 images a request), npy (1,000 a request) and PNG (one a request, the
    first ``png_images``). Markdown lines; a server that cannot start is reported, not raised."""
    srv = LocalServer.serve(model_dir, workdir, own_group=True)
    try:
        try:
            healthy_s = srv.wait_healthy(timeout=180)
        except AssertionError as e:
            return [f"`serve` did not become healthy: {str(e)[-1500:]}"]
        loaded = [line for line in srv.output().splitlines() if "model loaded on" in line]
        where = ", ".join(sorted({line.split("model loaded on ")[-1] for line in loaded}))
        started = (
            f"`serve` outside Docker: /ping 200 {healthy_s:.1f} s after the start; model loaded "
            f"{len(loaded)} time(s), on {where or 'a device its log does not name'}"
        )
        lines = [
            started,
            "",
            "| body | images | requests | accuracy (%) | seconds |",
            "|---|---|---|---|---|",
        ]
        bodies = {
            "JSON": [
                (json.dumps(images[i : i + 1000].tolist()).encode(), "application/json")
                for i in range(0, len(images), 1000)
            ],
            "npy": [
                (npy(images[i : i + 1000]), "application/x-npy")
                for i in range(0, len(images), 1000)
            ],
            "PNG": [(png(image), "image/png") for image in images[:png_images]],
        }
        for name, requests in bodies.items():
            predicted, started = [], time.perf_counter()
            for body, content_type in requests:
                status, _, answer = srv.invoke(body, content_type, "application/json", 60)
                if status != 200:
                    lines.append(f"| {name} | - | - | HTTP {status}: {answer[:300]!r} | - |")
                    break
                predicted += [p["label"] for p in json.loads(answer)["predictions"]]
            else:
                seconds = time.perf_counter() - started
                accuracy = 100 * np.mean(np.array(predicted) == labels[: len(predicted)])
                lines.append(
                    f"| {name} | {len(predicted):,} | {len(requests):,} | {accuracy:.2f} "
                    f"| {seconds:.2f} |"
                )
        return lines
    finally:
        srv.close()


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data", default="data", help="folder with training/ and testing/")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2, help="training runs in this process")
    parser.add_argument("--best-epochs", type=int, default=20, help="preset=best; 0: skip")
    parser.add_argument("--repeats", type=int, default=50, help="timed batches of 1,000")
    parser.add_argument("--no-serve", action="store_true", help="skip starting `serve`")
    parser.add_argument("--out", default="results/gpu_bench.md")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench_gpu_")
    rows, model_dir = [], None
    for i in range(1, args.runs + 1):
        row, model_dir = train_once(args.data, work, f"run{i}", {"epochs": args.epochs})
        first_on_gpu = i == 1 and torch.cuda.is_available()
        row["name"] = f"default, run {i} in this process" + (
            " (with CUDA's start-up)" * first_on_gpu
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.best_epochs:
        best = {"preset": "best", "epochs": args.best_epochs}
        row, _ = train_once(args.data, work, "best", best)
        row["name"] = f"preset=best, {args.best_epochs} epochs"
        rows.append(row)
        print(json.dumps(row), flush=True)
    images, labels = load_test_set(args.data)
    pixels = to_batch(images[:1000])  # float 0-1, as input_fn gives
    rate, device = predict_rate(model_dir, pixels, args.repeats)

    name = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.machine()
    lines = [
        f"GPU benchmark on {device} ({name}), torch {torch.__version__}",
        "",
        table(rows, digits=2),  # two decimals: a GPU reaches 99% within seconds
    ]
    lines += [
        "",
        f"predict_fn on a batch of 1,000 (median of {args.repeats}): {rate:,.0f} images/s",
    ]
    if not args.no_serve:
        lines += [""] + serve_check(model_dir, images, labels, os.path.join(work, "serve"))
    write_report(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
