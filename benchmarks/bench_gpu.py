"""The GPU figures, in one process: the default model trained with the whole data set on the
device (test accuracy after each epoch, time to 99.0% and 99.5%), twice, since the first run
also pays for CUDA's start-up; then images/s of the serving path (predict_fn, host to device and
back) for a batch of 1,000 on the model it trained. Prints and writes a Markdown table.

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

from benchmarks.bench_train import summarize, table
from benchmarks.reporting import write_report
from container.serving.hooks import model_fn, predict_fn
from container.serving.pixels import to_batch
from container.training import parameters as p
from container.training.data import load_mnist
from container.training.entry import run


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


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data", default="data", help="folder with training/ and testing/")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2, help="training runs in this process")
    parser.add_argument("--repeats", type=int, default=50, help="timed batches of 1,000")
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
    _, test = load_mnist(os.path.join(args.data, "training"), os.path.join(args.data, "testing"))
    pixels = to_batch(test.images[:1000].numpy())  # float 0-1, as input_fn gives
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
    write_report(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
