"""The image through the SageMaker Python SDK: one set of functions for local mode and the cloud.

`mode` picks the session and the instances; nothing else differs:
    local   LocalSession, file:// channels and outputs, instance type local (local_gpu where a
            GPU is present), the image as built here, a placeholder role.
    cloud   a SageMaker session in your account, s3:// channels and outputs, ml.* instances,
            the image pushed to ECR (`make push`), your SageMaker execution role.

    python -m local_test.jobs train [--instances 2] [NAME=VALUE ...]
    python -m local_test.jobs predict  |  transform  |  sweep
    python -m local_test.jobs train --mode cloud --image-uri URI --role ARN --data s3://b/mnist
"""

import argparse
import io
import json
import logging
import os
import sys
import tempfile
import time
import urllib.parse

import numpy as np

from container.devices import has_gpu
from container.training.metrics import METRIC_DEFINITIONS, OBJECTIVE_METRIC
from local_test import ROOT
from local_test.opt_ml import parse_assignments

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
# Local mode runs `docker info` before every request and logs a warning each time.
logging.getLogger("sagemaker.local.utils").setLevel(logging.ERROR)
import sagemaker
from sagemaker.deserializers import JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.model import Model
from sagemaker.predictor import Predictor
from sagemaker.serializers import IdentitySerializer, JSONSerializer, NumpySerializer
from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

LOCAL_ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"  # local mode never uses it
LOCAL_IMAGE = "sagemaker-mnist:latest"
CLOUD_TRAINING_INSTANCE = "ml.g5.xlarge"
CLOUD_SERVING_INSTANCE = "ml.c6i.large"
# The SDK's defaults, as its config file would set them: no telemetry.
SDK_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
# The original project's tuning ranges.
TUNING_RANGES = {"lr": ContinuousParameter(0.001, 0.1), "hidden_channels": IntegerParameter(2, 32)}


def local_instance_type():
    return "local_gpu" if has_gpu() else "local"


def session(mode, region=None, boto_session=None, **clients):
    """A LocalSession (local) or Session (cloud), both with SDK telemetry off."""
    import boto3

    boto_session = boto_session or boto3.Session(
        region_name=region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    )
    if mode == "local":
        from sagemaker.local import LocalSession

        local = LocalSession(boto_session=boto_session, sagemaker_config=SDK_CONFIG)
        local.config = {"local": {"local_code": True}}
        return local
    return sagemaker.Session(boto_session=boto_session, sagemaker_config=SDK_CONFIG, **clients)


def uri(path):
    """s3:// and file:// as they are; a local path as a file:// URI."""
    if urllib.parse.urlparse(path).scheme in ("s3", "file"):
        return path
    return "file://" + os.path.abspath(path)


def channels(data):
    return {name: uri(f"{data.rstrip('/')}/{name}") for name in ("training", "testing")}


def estimator(
    sess,
    image_uri,
    role,
    instance_type,
    instance_count=1,
    hyperparameters=None,
    output_path=None,
    checkpoint_s3_uri=None,
    spot=False,
    max_run_s=3600,
):
    """The training job; in the cloud with spot instances and a checkpoint location."""
    extra = {}
    if spot:
        extra = {"use_spot_instances": True, "max_wait": 2 * max_run_s}
    return Estimator(
        image_uri=image_uri,
        role=role,
        instance_count=instance_count,
        instance_type=instance_type,
        hyperparameters=hyperparameters or {},
        output_path=output_path,
        sagemaker_session=sess,
        metric_definitions=METRIC_DEFINITIONS,
        max_run=max_run_s,
        checkpoint_s3_uri=checkpoint_s3_uri,
        base_job_name="mnist",
        disable_profiler=True,
        debugger_hook_config=False,
        **extra,
    )  # for the SDK's own images


def tuner(est, max_jobs=10, max_parallel_jobs=2):
    """Hyperparameter tuning over the original project's ranges, on the shared metrics."""
    return HyperparameterTuner(
        est,
        objective_metric_name=OBJECTIVE_METRIC,
        hyperparameter_ranges=TUNING_RANGES,
        metric_definitions=METRIC_DEFINITIONS,
        objective_type="Maximize",
        max_jobs=max_jobs,
        max_parallel_jobs=max_parallel_jobs,
        base_tuning_job_name="mnist",
    )


def model(sess, image_uri, role, model_data):
    return Model(
        image_uri=image_uri,
        model_data=model_data,
        role=role,
        sagemaker_session=sess,
        predictor_cls=Predictor,
        name=f"mnist-{int(time.time() * 1000)}",
    )


SERIALIZERS = {
    "json": JSONSerializer(),
    "npy": NumpySerializer(),
    "png": IdentitySerializer(content_type="image/png"),
}


def png(image):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def predict(predictor, images, kind):
    """Labels of ``images`` (uint8, N×28×28) sent the way ``kind`` says, and seconds taken.
    PNG carries one image a request; JSON and npy send them all in one."""
    predictor.serializer = SERIALIZERS[kind]
    predictor.deserializer = JSONDeserializer()
    started = time.perf_counter()
    if kind == "png":
        answers = [predictor.predict(png(image))["predictions"][0] for image in images]
    else:
        body = images.tolist() if kind == "json" else images
        answers = predictor.predict(body)["predictions"]
    return [a["label"] for a in answers], time.perf_counter() - started


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


def transform(mdl, input_uri, output_uri, instance_type, content_type="application/jsonlines"):
    """Batch transform, one image a line (SplitType=Line), answers as JSON lines."""
    transformer = mdl.transformer(
        instance_count=1,
        instance_type=instance_type,
        output_path=output_uri,
        accept="application/jsonlines",
        strategy="MultiRecord",
        assemble_with="Line",
        max_payload=6,
    )
    transformer.transform(
        input_uri, content_type=content_type, split_type="Line", wait=True, logs=False
    )
    return transformer


# ------------------------------------------------------------------ command line


def load_test_set(data):
    from container.training.data import load_mnist

    _, test = load_mnist(os.path.join(data, "training"), os.path.join(data, "testing"))
    return test.images[:, 0].numpy(), test.labels.numpy()


def last_model_file(args):
    return os.path.join(args.work, "last-model.txt")


def model_data_for(args):
    """--model-data, else the model the last `train` wrote."""
    if args.model_data:
        return args.model_data
    try:
        with open(last_model_file(args)) as f:
            return f.read().strip()
    except FileNotFoundError:
        sys.exit("no model yet: run `make local-train` first, or pass --model-data")


def cmd_train(args, sess):
    out = uri(os.path.join(args.work, "output")) if args.mode == "local" else args.output
    est = estimator(
        sess,
        args.image_uri,
        args.role,
        args.instance_type,
        args.instances,
        parse_assignments(args.hyperparameters),
        out,
        checkpoint_s3_uri=args.checkpoints if args.mode == "cloud" else None,
        spot=args.mode == "cloud" and args.spot,
    )
    started = time.monotonic()
    est.fit(channels(args.data), logs=True)
    elapsed = time.monotonic() - started
    with open(last_model_file(args), "w") as f:
        f.write(est.model_data)
    metrics = read_metrics(est.model_data)
    accuracy = f"{metrics['test_accuracy']:.2f}%" if metrics else "see the job's metrics"
    print(
        f"\ntest accuracy {accuracy}; {args.instances} instance(s); {elapsed:.0f} s wall\n"
        f"model: {est.model_data}"
    )
    return est


def read_metrics(model_data):
    """metrics.json out of a local model.tar.gz (None for one in S3)."""
    import tarfile

    parsed = urllib.parse.urlparse(model_data)
    if parsed.scheme != "file":
        return None
    with tarfile.open(parsed.path) as tar:
        return json.load(tar.extractfile("metrics.json"))


def cmd_predict(args, sess):
    model_data = model_data_for(args)
    x, y = load_test_set(args.data)
    mdl = model(sess, args.image_uri, args.role, model_data)
    predictor = mdl.deploy(initial_instance_count=1, instance_type=args.serving_instance_type)
    try:
        for kind, count in (("json", 1000), ("npy", 1000), ("png", 50)):
            labels, seconds = predict(predictor, x[:count], kind)
            accuracy = 100 * np.mean(np.array(labels) == y[:count])
            requests = count if kind == "png" else 1
            print(
                f"{kind:>4}: {count} images in {requests} request(s), accuracy "
                f"{accuracy:.2f}%, {1000 * seconds / requests:.1f} ms a request"
            )
    finally:
        predictor.delete_endpoint(delete_endpoint_config=True)
        print("endpoint deleted")


def cmd_transform(args, sess):
    model_data = model_data_for(args)
    x, y = load_test_set(args.data)
    work = tempfile.mkdtemp(prefix="transform-", dir=args.work)
    os.makedirs(os.path.join(work, "input"))
    write_jsonlines(x, os.path.join(work, "input", "test.jsonl"))
    mdl = model(sess, args.image_uri, args.role, model_data)
    started = time.monotonic()
    transform(
        mdl,
        uri(os.path.join(work, "input")),
        uri(os.path.join(work, "output")),
        args.serving_instance_type,
    )
    labels = read_transform_output(os.path.join(work, "output"))
    accuracy = 100 * np.mean(np.array(labels) == y)
    print(
        f"batch transform of {len(labels)} test images: accuracy {accuracy:.2f}%, "
        f"{time.monotonic() - started:.0f} s; output in {work}/output"
    )


# The original project's experiment: the baseline CNN's width, 2 epochs each.
SWEEP_WIDTHS = (2, 5, 10, 20, 32)
ORIGINAL_RESULT = "about 95-97"


def sweep(sess, args, widths=SWEEP_WIDTHS, epochs=2, inputs=None):
    """One training job per width of the baseline model, then the default model; rows of
    (label, hidden_channels, test accuracy, seconds)."""
    runs = [
        (f"baseline, hidden_channels={w}", {"model": "baseline", "hidden_channels": w})
        for w in widths
    ] + [("default (bncnn)", {})]
    rows = []
    for label, hyperparameters in runs:
        output = uri(tempfile.mkdtemp(prefix="sweep-", dir=args.work))
        est = estimator(
            sess,
            args.image_uri,
            args.role,
            args.instance_type,
            1,
            dict(hyperparameters, epochs=epochs),
            output,
        )
        started = time.monotonic()
        est.fit(inputs or channels(args.data), logs=False)
        rows.append(
            (label, read_metrics(est.model_data)["test_accuracy"], time.monotonic() - started)
        )
    return rows


def sweep_report(rows, epochs, folder):
    """A Markdown table beside the original project's results, and a bar chart PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [
        (
            f"| model | test accuracy after {epochs} epoch(s) (%) | original project (%) | "
            "job wall time (s) |"
        ),
        "|---|---|---|---|",
    ]
    for label, accuracy, seconds in rows:
        original = ORIGINAL_RESULT if label.startswith("baseline") else "-"
        lines.append(f"| {label} | {accuracy:.2f} | {original} | {seconds:.0f} |")
    table = "\n".join(lines) + "\n"
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "sweep.md"), "w") as f:
        f.write(table)
    figure, axes = plt.subplots(figsize=(7, 3.5))
    labels = [
        label.replace("baseline, hidden_channels=", "baseline\nc=").replace(" (", "\n(")
        for label, *_ in rows
    ]
    accuracies = [accuracy for _, accuracy, _ in rows]
    axes.bar(labels, accuracies, color=["#7f8c8d"] * (len(rows) - 1) + ["#2e86c1"], zorder=2)
    axes.axhspan(
        95, 97, color="#f5b041", alpha=0.35, label="original project: about 95-97%", zorder=3
    )
    axes.tick_params(axis="x", labelsize=8)
    axes.set_ylim(min(90.0, min(accuracies) - 1), 100)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(f"MNIST test accuracy after {epochs} epoch(s)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    chart = os.path.join(folder, "sweep.png")
    figure.savefig(chart, dpi=100)
    plt.close(figure)
    return table, chart


def cmd_sweep(args, sess):
    epochs = int(parse_assignments(args.hyperparameters).get("epochs", 2))
    table, chart = sweep_report(
        sweep(sess, args, epochs=epochs), epochs, os.path.join(ROOT, "results")
    )
    print("\n" + table + f"\nchart: {chart}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("command", choices=["train", "predict", "transform", "sweep", "tune"])
    parser.add_argument("hyperparameters", nargs="*", metavar="NAME=VALUE")
    parser.add_argument("--mode", choices=["local", "cloud"], default="local")
    parser.add_argument("--image-uri", default=LOCAL_IMAGE)
    parser.add_argument("--role", default=LOCAL_ROLE, help="SageMaker execution role (cloud)")
    parser.add_argument(
        "--data",
        default=os.path.join(ROOT, "data"),
        help="folder or s3:// prefix holding training/ and testing/",
    )
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument(
        "--instance-type", help=f"default: local, local_gpu or {CLOUD_TRAINING_INSTANCE}"
    )
    parser.add_argument(
        "--serving-instance-type", help=f"default: local, local_gpu or {CLOUD_SERVING_INSTANCE}"
    )
    parser.add_argument("--output", help="s3:// prefix for models (cloud)")
    parser.add_argument("--checkpoints", help="s3:// prefix for checkpoints (cloud)")
    parser.add_argument("--spot", action="store_true", help="spot instances (cloud)")
    parser.add_argument("--model-data", help="model.tar.gz to deploy (default: the last one)")
    parser.add_argument(
        "--work",
        default=os.path.join(ROOT, "build", "sagemaker"),
        help="local folder for outputs and the last model's location",
    )
    args = parser.parse_intermixed_args(argv)
    local = args.mode == "local"
    args.instance_type = args.instance_type or (
        local_instance_type() if local else CLOUD_TRAINING_INSTANCE
    )
    args.serving_instance_type = args.serving_instance_type or (
        local_instance_type() if local else CLOUD_SERVING_INSTANCE
    )
    os.makedirs(args.work, exist_ok=True)
    sess = session(args.mode)
    if args.command == "tune":
        est = estimator(
            sess,
            args.image_uri,
            args.role,
            args.instance_type,
            1,
            parse_assignments(args.hyperparameters),
            args.output,
        )
        tuner(est).fit(channels(args.data))
        return
    commands = {
        "train": cmd_train,
        "predict": cmd_predict,
        "transform": cmd_transform,
        "sweep": cmd_sweep,
    }
    commands[args.command](args, sess)


if __name__ == "__main__":
    main()
