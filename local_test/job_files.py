"""What the launchers write and read beside the SDK, the same for either version: URIs, request
bodies, batch transform files and a model's metrics."""

import io
import json
import os
import tarfile
import urllib.parse

CHANNELS = ("training", "testing")


def uri(path):
    """s3:// and file:// as they are; a local path as a file:// URI."""
    if urllib.parse.urlparse(path).scheme in ("s3", "file"):
        return path
    return "file://" + os.path.abspath(path)


def load_test_set(data):
    """The test split under ``data`` (training/ and testing/ folders): images (N, 28, 28) of
    uint8 pixels and their labels, as numpy."""
    from container.training.data import load_mnist  # torch: not needed by the SDK launchers

    _, test = load_mnist(*(os.path.join(data, name) for name in CHANNELS))
    return test.images[:, 0].numpy(), test.labels.numpy()


def channel_uris(data):
    """{channel: URI} of the training and testing folders under ``data`` (a folder or s3://)."""
    return {name: uri(f"{data.rstrip('/')}/{name}") for name in CHANNELS}


def png(image):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_jsonlines(images, path):
    with open(path, "w") as f:
        f.writelines(json.dumps(image.reshape(-1).tolist()) + "\n" for image in images)


def read_transform_output(folder):
    """Labels from the .out files a batch transform wrote, in input order."""
    labels = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".out"):
            with open(os.path.join(folder, name)) as f:
                labels += [json.loads(line)["label"] for line in f if line.strip()]
    return labels


def read_metrics(model_data):
    """metrics.json out of a local model.tar.gz (None for one in S3)."""
    parsed = urllib.parse.urlparse(model_data)
    if parsed.scheme not in ("file", ""):
        return None
    with tarfile.open(parsed.path) as tar:
        return json.load(tar.extractfile("metrics.json"))
