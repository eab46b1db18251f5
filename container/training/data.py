"""Reads MNIST from the training and testing channels into in-memory tensors.

Accepted in a channel folder (or any folder below it):
- the four standard IDX files, raw or gzipped: train-images-idx3-ubyte, train-labels-idx1-ubyte,
  t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (a '.' in place of the last '-' also matches);
- one .npz with x_train and y_train, and/or x_test and y_test (the Keras mnist.npz layout).

Every check failure raises DataError naming the file and the problem.
"""

import gzip
import os
import re
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from sagemaker_training.errors import ClientError

from model.networks import IMAGE_SIZE, NUM_CLASSES

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_IDX_NAME = re.compile(r"^(train|t10k)-(images|labels)[-.]idx([13])-ubyte(\.gz)?$")
SPLITS = {"train": "train", "t10k": "test"}


class DataError(ClientError):
    """A channel's data is missing or unusable; the message names the file."""


@dataclass
class Split:
    images: torch.Tensor  # (N, 1, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self):
        return len(self.labels)


def _read_bytes(path):
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: cannot be read ({e})") from None


def read_idx(path, kind):
    """The array in the IDX file at ``path``; ``kind`` is 'images' or 'labels'."""
    data = _read_bytes(path)
    ndim = 3 if kind == "images" else 1
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: truncated: {len(data)} bytes, shorter than the IDX header")
    magic = int.from_bytes(data[:4], "big")
    expected_magic = IDX_IMAGES_MAGIC if kind == "images" else IDX_LABELS_MAGIC
    if magic != expected_magic:
        raise DataError(
            f"{path}: not an IDX {kind} file: magic number {magic:#010x}, "
            f"expected {expected_magic:#010x}"
        )
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if kind == "images" and dims[1:] != [IMAGE_SIZE, IMAGE_SIZE]:
        raise DataError(
            f"{path}: images are {dims[1]}x{dims[2]}, expected {IMAGE_SIZE}x{IMAGE_SIZE}"
        )
    expected = int(np.prod(dims))
    body = len(data) - header_size
    if body != expected:
        problem = "truncated" if body < expected else "longer than its header says"
        raise DataError(
            f"{path}: {problem}: the header declares {dims[0]} {kind} "
            f"({expected} bytes) but {body} bytes follow"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def _as_split(images, labels, images_name, labels_name):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8:
        if (
            not np.issubdtype(images.dtype, np.floating)
            or images.size
            and (not np.isfinite(images).all() or images.min() < 0 or images.max() > 1)
        ):
            raise DataError(
                f"{images_name}: pixels must be uint8 0-255 or floats in 0-1, got {images.dtype}"
            )
        images = np.rint(images * 255).astype(np.uint8)
    if images.ndim == 2 and images.shape[1] == IMAGE_SIZE * IMAGE_SIZE:
        images = images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(
            f"{images_name}: images have shape {images.shape}, expected "
            f"(N, {IMAGE_SIZE}, {IMAGE_SIZE})"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{labels_name}: labels must be one integer per image, "
            f"got shape {labels.shape} of {labels.dtype}"
        )
    if len(labels) != len(images):
        raise DataError(
            f"{labels_name}: {len(labels)} labels for {len(images)} images in {images_name}"
        )
    if len(labels) == 0:
        raise DataError(f"{images_name}: holds no images")
    bad = (labels < 0) | (labels >= NUM_CLASSES)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{labels_name}: label {labels[first]} at index {first} is not a digit "
            f"0-{NUM_CLASSES - 1} ({int(bad.sum())} such labels)"
        )
    return Split(
        torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
    )


def _find_files(channel_dir):
    """IDX files by (split, kind) and .npz files found under ``channel_dir``."""
    idx, npz = {}, []
    for root, dirs, files in os.walk(channel_dir):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            match = _IDX_NAME.match(name)
            if match:
                key = (SPLITS[match.group(1)], match.group(2))
                if key in idx:
                    raise DataError(
                        f"{path}: a second {match.group(1)} {match.group(2)} file "
                        f"beside {idx[key]}; keep one"
                    )
                idx[key] = path
            elif name.endswith(".npz"):
                npz.append(path)
    return idx, npz


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return {key: f[key] for key in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from None


def load_channel(channel_dir, name):
    """Every split found in one channel folder, as {'train': Split, 'test': Split}."""
    if not channel_dir or not os.path.isdir(channel_dir):
        raise DataError(f"channel '{name}': folder {channel_dir} does not exist")
    idx, npz = _find_files(channel_dir)
    splits = {}
    for split in SPLITS.values():
        images, labels = idx.get((split, "images")), idx.get((split, "labels"))
        if images and labels:
            splits[split] = _as_split(
                read_idx(images, "images"), read_idx(labels, "labels"), images, labels
            )
        elif images or labels:
            present = images or labels
            missing = "labels" if images else "images"
            raise DataError(f"{present}: its {missing} file is missing from channel '{name}'")
    if len(npz) > 1:
        raise DataError(f"channel '{name}': several .npz files ({', '.join(npz)}); keep one")
    for path in npz:
        arrays = _read_npz(path)
        for split in SPLITS.values():
            x, y = f"x_{split}", f"y_{split}"
            if (x in arrays) != (y in arrays):
                raise DataError(
                    f"{path}: has {x if x in arrays else y} without {y if x in arrays else x}"
                )
            if x in arrays and split not in splits:
                splits[split] = _as_split(arrays[x], arrays[y], f"{path}[{x}]", f"{path}[{y}]")
        if not splits:
            raise DataError(
                f"{path}: holds none of x_train/y_train or x_test/y_test "
                f"(keys: {', '.join(arrays) or 'none'})"
            )
    return splits


EXPECTED_FILES = (
    "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] "
    "(t10k-... for the test split), or an .npz with x_train/y_train "
    "(x_test/y_test)"
)


def load_mnist(training_dir, testing_dir=None):
    """(train, test) Splits from the two channels; a lone training channel may hold both."""
    training = load_channel(training_dir, "training")
    testing = load_channel(testing_dir, "testing") if testing_dir else {}
    train = training.get("train")
    test = testing.get("test") or training.get("test")
    if train is None:
        raise DataError(
            f"channel 'training' ({training_dir}) has no training split: expected {EXPECTED_FILES}"
        )
    if test is None:
        where = (
            f"channel 'testing' ({testing_dir}) or 'training'"
            if testing_dir
            else f"channel 'training' ({training_dir}), and there is no 'testing' channel"
        )
        raise DataError(f"{where} has no test split: expected {EXPECTED_FILES}")
    return train, test
