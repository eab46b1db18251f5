"""Trains the presets through the image's `train` (no Docker), one after another or `--jobs`
at a time, and prints a Markdown table: test accuracy after each epoch, time to 99.0%, training
time, peak memory.

    python -m benchmarks.bench_train --data data [--best [--seeds 5]] [--only-best]
        [--set NAME=VALUE] [--jobs 2]

Times are seconds of training (the loop itself: no start-up, no evaluation), as metrics.json
and history.json record them. One run per row: compare rows of the same run.
"""

import argparse
import json
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from benchmarks.reporting import write_report
from container.serving.hooks import model_fn, predict_fn
from container.serving.pixels import to_batch
from local_test import ROOT
from local_test.job_files import load_test_set
from local_test.opt_ml import make_opt_ml, parse_assignments, train_command

RUNS = [
    ("default (bncnn, 2 epochs)", {}),
    ("fast: epochs=1", {"epochs": 1}),
    ("baseline, original settings", {"model": "baseline"}),
    ("pytorch/examples network, 5 epochs", {"model": "examples", "epochs": 5}),
]


# The `best` preset, once a seed: docs/performance.md reports the mean of seeds 1 to 5.
def best_runs(seeds, members=1, settings=None):
    settings = {**({"members": members} if members != 1 else {}), **(settings or {})}
    name = ", ".join(["best", *(f"{k}={v}" for k, v in settings.items())])
    return [
        (f"{name}: seed={seed}", {"preset": "best", **settings, "seed": seed})
        for seed in range(1, seeds + 1)
    ]


def bench(name, hyperparameters, data, work, cpus=None):
    """One training run's row; ``cpus``: the only CPUs it may run on, a sorted list (all, if
    None)."""
    base = os.path.join(work, re.sub(r"\W+", "-", name).strip("-"))
    shutil.rmtree(base, ignore_errors=True)
    channels = {c: os.path.join(data, c) for c in ("training", "testing")}
    make_opt_ml(base, hyperparameters, channels)
    argv, env = train_command(base)
    print(f"== {name}" + (f" on CPUs {cpus}" if cpus else ""), flush=True)
    if cpus:
        argv = ["taskset", "--cpu-list", ",".join(map(str, cpus)), *argv]
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    with open(os.path.join(base, "train.log"), "w") as f:
        f.write(done.stdout + done.stderr)
    if done.returncode:
        sys.exit(f"{name} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    model_dir = os.path.join(base, "model")
    row = {
        **summarize(name, model_dir, os.path.join(base, "output", "data")),
        "model_dir": model_dir,
    }
    print(f"   {row}", flush=True)
    return row


def bench_all(runs, data, work, jobs=1):
    """The rows of ``runs`` ((name, hyperparameters) pairs), ``jobs`` at a time, each pinned to
    its own share of this process's CPUs so that runs side by side do not contend for them."""
    cpus = sorted(os.sched_getaffinity(0))
    if not 1 <= jobs <= len(cpus):
        sys.exit(f"--jobs {jobs}: this process may run on {len(cpus)} CPUs; give 1 to {len(cpus)}")
    if jobs == 1:
        return [bench(name, hp, data, work) for name, hp in runs]
    shares, failed = queue.SimpleQueue(), threading.Event()
    for i in range(jobs):
        shares.put(cpus[i::jobs])

    def run(item):
        share = shares.get()
        try:
            if failed.is_set():  # a run before it failed: this one never starts
                return None
            return bench(*item, data, work, share)
        except BaseException:
            failed.set()  # before its share goes back for the next run
            raise
        finally:
            shares.put(share)

    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(run, item) for item in runs]
        try:
            return [future.result() for future in futures]
        except BaseException:  # a failed run or ^C: the runs not yet started never start
            failed.set()
            pool.shutdown(cancel_futures=True)
            raise


def predict_rate(model_dir, images, repeats):
    """Images/s of predict_fn on ``images`` (median of ``repeats`` calls after a warm-up)."""
    model = model_fn(model_dir)
    for _ in range(5):
        predict_fn(images, model)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_fn(images, model)  # returns numpy: the device has finished
        seconds.append(time.perf_counter() - started)
    return len(images) / float(np.median(seconds)), str(model.device)


def summarize(name, model_dir, output_data_dir):
    """The row of one finished training run, from the metrics.json and history.json it wrote."""
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(output_data_dir, "history.json")) as f:
        epochs = json.load(f)["epochs"]
    to_99, to_995 = (
        next((e["train_seconds"] for e in epochs if e["test_accuracy"] >= target), None)
        for target in (99.0, 99.5)
    )
    return {
        "name": name,
        "accuracy": [e["test_accuracy"] for e in epochs],
        "to_99": to_99,
        "to_995": to_995,
        "seconds": metrics["train_seconds"],
        "images_per_second": sum(e["images_per_second"] for e in epochs) / len(epochs),
        "peak_mb": metrics["peak_memory_mb"],
    }


def test_batch(data, size=1000):
    """The first ``size`` test images as the float 0-1 batch input_fn gives predict_fn."""
    return to_batch(load_test_set(data)[0][:size])


def mean_row(rows):
    """The mean of ``rows``' last-epoch accuracies, times and rates, as one more row; a time to
    a target is averaged only where every run reached it."""

    def mean(key):
        values = [r.get(key) for r in rows]
        return None if None in values else sum(values) / len(values)

    last = [r["accuracy"][-1] for r in rows]
    return {
        "name": f"mean of the {len(rows)} above (last epoch {min(last):.2f} to {max(last):.2f})",
        "accuracy": [sum(last) / len(last)],
        **{key: mean(key) for key in ("to_99", "to_995", "seconds", "images_per_second")},
        "peak_mb": max(r["peak_mb"] for r in rows),
        **({"predict_rate": mean("predict_rate")} if "predict_rate" in rows[0] else {}),
    }


def against_examples(rows):
    """The sentence that sets the first row's time to 99.0% against the pytorch/examples
    network's, where both reached it; else an empty string."""
    examples = [r for r in rows if r["name"].startswith("pytorch/examples")]
    if not (examples and examples[0]["to_99"] and rows[0]["to_99"]):
        return ""
    ratio = examples[0]["to_99"] / rows[0]["to_99"]
    return f"Time to 99.0%: the default model took 1/{ratio:.0f} of the pytorch/examples network's."


def table(rows, digits=1):
    """Markdown rows of ``rows``; times to ``digits`` decimals."""
    serving = any("predict_rate" in r for r in rows)
    lines = [
        (
            "| run | test accuracy after each epoch (%) | time to 99.0% (s) "
            "| time to 99.5% (s) | training (s) | images/s | peak memory (MB) |"
            + " predict_fn images/s |"
            * serving
        ),
        "|---|---|---|---|---|---|---|" + "---|" * serving,
    ]
    for r in rows:
        accuracy = ", ".join(f"{a:.2f}" for a in r["accuracy"])
        to_99, to_995 = (
            f"{t:.{digits}f}" if t is not None else "not reached"
            for t in (r["to_99"], r.get("to_995"))
        )
        lines.append(
            f"| {r['name']} | {accuracy} | {to_99} | {to_995} "
            f"| {r['seconds']:.{digits}f} | {r['images_per_second']:.0f} "
            f"| {r['peak_mb']:.0f} |"
            + (f" {r['predict_rate']:,.0f} |" if "predict_rate" in r else " - |" * serving)
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data", default="data", help="folder with training/ and testing/")
    parser.add_argument("--work", default="build/bench_train", help="scratch /opt/ml trees")
    parser.add_argument("--out", default="results/train_bench.md", help="Markdown table")
    parser.add_argument("--best", action="store_true", help="also run preset=best (long)")
    parser.add_argument("--only-best", action="store_true", help="run preset=best alone")
    parser.add_argument("--seeds", type=int, default=1, help="preset=best with seeds 1 to N")
    parser.add_argument("--members", type=int, default=1, help="preset=best as an ensemble")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a hyperparameter of every preset=best run, named in its row (repeatable)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="training runs at once, each on its own share of the CPUs (times are then per share)",
    )
    args = parser.parse_args()
    settings = parse_assignments(args.set)
    best = best_runs(args.seeds, args.members, settings) if args.best or args.only_best else []
    runs = RUNS * (not args.only_best)
    rows = bench_all(runs + best, args.data, args.work, args.jobs)
    batch = test_batch(args.data)
    for row in rows:  # after all training, so that no run shares the CPUs with it
        row["predict_rate"] = predict_rate(row["model_dir"], batch, 20)[0]
    best_rows = rows[len(runs) :]
    if len(best_rows) > 1:
        rows.append(mean_row(best_rows))
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {'CUDA' if torch.cuda.is_available() else 'CPU'}"
    )
    report = f"Training benchmark on {machine}\n\n{table(rows)}\n\n{against_examples(rows)}\n"
    write_report(args.out, report)


if __name__ == "__main__":
    main()
