"""The launchers behind `make local-*` and the cloud commands: train, predict, transform, sweep
and tune, in local mode (default) or in the cloud (--mode cloud).

    python -m local_test.jobs train [--instances 2] [NAME=VALUE ...]
    python -m local_test.jobs train --entry-point train.py --source-dir examples/mnist_script
    python -m local_test.jobs predict  |  transform  |  sweep
    python -m local_test.jobs train --mode cloud --image-uri URI --role ARN --data s3://b/mnist
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from local_test import ROOT, sweep
from local_test.opt_ml import parse_assignments
from local_test.sdk import (
    CLOUD_SERVING_INSTANCE,
    CLOUD_TRAINING_INSTANCE,
    LOCAL_IMAGE,
    LOCAL_ROLE,
    channels,
    estimator,
    local_instance_type,
    model,
    predict,
    read_metrics,
    read_transform_output,
    session,
    transform,
    tuner,
    uri,
    write_jsonlines,
)


def load_test_set(data):
    from container.training.data import load_mnist

    _, test = load_mnist(os.path.join(data, "training"), os.path.join(data, "testing"))
    return test.images[:, 0].numpy(), test.labels.numpy()


# What --distribution names, as the SDK's estimators take it.
DISTRIBUTIONS = {None: None, "torch_distributed": {"torch_distributed": {"enabled": True}}}


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
        entry_point=args.entry_point,
        source_dir=args.source_dir,
        distribution=DISTRIBUTIONS[args.distribution],
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


def cmd_predict(args, sess):
    model_data = model_data_for(args)
    x, y = load_test_set(args.data)
    mdl = model(sess, args.image_uri, args.role, model_data, args.entry_point, args.source_dir)
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
    mdl = model(sess, args.image_uri, args.role, model_data, args.entry_point, args.source_dir)
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


def cmd_sweep(args, sess):
    epochs = int(parse_assignments(args.hyperparameters).get("epochs", 2))
    table, chart = sweep.report(
        sweep.run(sess, args, epochs=epochs), epochs, os.path.join(ROOT, "results")
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
    parser.add_argument(
        "--entry-point",
        help="your own code: the training script (train) or the inference module (predict, "
        "transform)",
    )
    parser.add_argument("--source-dir", help="the folder that holds --entry-point")
    parser.add_argument(
        "--distribution",
        choices=[d for d in DISTRIBUTIONS if d],
        help="train: how a script is launched on several instances (default: once a host)",
    )
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
