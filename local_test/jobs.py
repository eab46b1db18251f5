"""The launchers behind `make local-*` and the cloud commands: train, predict, transform, sweep
and tune, in local mode (default) or in the cloud (--mode cloud).

    python -m local_test.jobs train [--instances 2] [NAME=VALUE ...]
    python -m local_test.jobs train --entry-point train.py --source-dir examples/mnist_script
    python -m local_test.jobs predict  |  transform  |  sweep  |  mme
    python -m local_test.jobs train --mode cloud --image-uri URI --role ARN --data s3://b/mnist
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time
import urllib.parse

import numpy as np

from local_test import ROOT, sdk, sweep
from local_test.job_files import (
    load_test_set,
    read_metrics,
    read_transform_output,
    uri,
    write_jsonlines,
)
from local_test.opt_ml import parse_assignments

LOOPBACK = ("127.0.0.1", "localhost", "::1")


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


def job_folder(args, kind):
    return tempfile.mkdtemp(prefix=f"{kind}-", dir=args.work)


def tracking_environment(args):
    """What a training job needs to log to MLflow, or None."""
    if not args.mlflow:
        return None
    return {"MLFLOW_TRACKING_URI": args.mlflow, "MLFLOW_EXPERIMENT_NAME": args.experiment}


def cmd_train(args, sess):
    model_trainer = sdk.trainer(
        sess,
        args.mode,
        args.image_uri,
        args.role,
        args.instance_type,
        args.instances,
        parse_assignments(args.hyperparameters),
        output_path=args.output,
        checkpoint_s3_uri=args.checkpoints,
        spot=args.spot,
        entry_point=args.entry_point,
        source_dir=args.source_dir,
        distribution=args.distribution,
        work=job_folder(args, "train") if args.mode == "local" else None,
        environment=tracking_environment(args),
    )
    started = time.monotonic()
    model_trainer.train(input_data_config=sdk.channels(args.data), wait=True, logs=True)
    elapsed = time.monotonic() - started
    model = sdk.model_data(model_trainer)
    with open(last_model_file(args), "w") as f:
        f.write(model)
    metrics = read_metrics(model) if os.path.exists(model) else None
    accuracy = f"{metrics['test_accuracy']:.2f}%" if metrics else "see the job's metrics"
    print(
        f"\ntest accuracy {accuracy}; {args.instances} instance(s); {elapsed:.0f} s wall\n"
        f"model: {model}"
    )
    return model_trainer


def cmd_predict(args, sess):
    model = model_data_for(args)
    x, y = load_test_set(args.data)
    builder = sdk.builder(
        sess,
        args.mode,
        args.image_uri,
        args.role,
        model,
        args.entry_point,
        args.source_dir,
        work=args.work,
    )
    endpoint = sdk.deploy(builder, args.mode, args.serving_instance_type)
    try:
        for kind, count in (("json", 1000), ("npy", 1000), ("png", 50)):
            labels, seconds = sdk.predict(endpoint, x[:count], kind)
            accuracy = 100 * np.mean(np.array(labels) == y[:count])
            requests = count if kind == "png" else 1
            print(
                f"{kind:>4}: {count} images in {requests} request(s), accuracy "
                f"{accuracy:.2f}%, {1000 * seconds / requests:.1f} ms a request"
            )
    finally:
        sdk.delete(endpoint)
        print("endpoint deleted")


def cmd_transform(args, sess):
    model = model_data_for(args)
    x, y = load_test_set(args.data)
    work = job_folder(args, "transform")
    os.makedirs(os.path.join(work, "input"))
    write_jsonlines(x, os.path.join(work, "input", "test.jsonl"))
    runner = sdk.transform_session(sess, args.mode)
    name = sdk.create_model(runner, args.image_uri, args.role, model)
    started = time.monotonic()
    sdk.transform(
        runner,
        name,
        uri(os.path.join(work, "input")),
        uri(os.path.join(work, "output")),
        args.serving_instance_type if args.mode == "cloud" else "local",
    )
    labels = read_transform_output(os.path.join(work, "output"))
    accuracy = 100 * np.mean(np.array(labels) == y)
    print(
        f"batch transform of {len(labels)} test images: accuracy {accuracy:.2f}%, "
        f"{time.monotonic() - started:.0f} s; output in {work}/output"
    )


def cmd_mme(args, sess):
    """One multi-model endpoint for every model.tar.gz under --model-data (an s3:// prefix):
    each answers 1,000 test images in turn; then the endpoint is deleted. Locally, the image
    runs directly (no SDK's local mode has multi-model endpoints)."""
    if args.mode == "local":
        from local_test import multi_model

        multi_model.main(["--image", args.image_uri, "--data", args.data])
        return
    if not (args.model_data or "").startswith("s3://"):
        sys.exit("mme --mode cloud needs --model-data s3://bucket/prefix/ (the models' folder)")
    from local_test.server import npy

    x, y = load_test_set(args.data)
    name = sdk.multi_model_endpoint(
        sess, args.image_uri, args.role, args.model_data, args.serving_instance_type
    )
    try:
        bucket, _, prefix = args.model_data.removeprefix("s3://").partition("/")
        listing = sess.boto_session.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
        for key in [o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith(".tar.gz")]:
            target = key.removeprefix(prefix)
            answer = sdk.invoke_target(sess, name, target, npy(x[:1000]), "application/x-npy")
            labels = [p["label"] for p in answer["predictions"]]
            print(f"{target}: accuracy {100 * np.mean(np.array(labels) == y[:1000]):.2f}%")
    finally:
        sess.sagemaker_client.delete_endpoint(EndpointName=name)
        print("endpoint deleted")


def cmd_sweep(args, sess):
    """The original experiment as one MLflow experiment: in --mlflow's server, or in one this
    machine runs for the sweep (local mode), its store in --mlflow-store."""
    epochs = int(parse_assignments(args.hyperparameters).get("epochs", 2))
    experiment = args.experiment if args.experiment != "mnist" else "mnist-sweep"
    with contextlib.ExitStack() as stack:
        uri = args.mlflow
        if not uri and args.mode == "local":
            from local_test.mlflow_server import MlflowServer

            uri = stack.enter_context(MlflowServer(args.mlflow_store)).uri
        rows = sweep.run(sess, args, epochs=epochs, tracking_uri=uri, experiment=experiment)
    table, chart = sweep.report(rows, epochs, os.path.join(ROOT, "results"))
    print("\n" + table + f"\nchart: {chart}")
    if uri:
        where = "`make mlflow-ui`" if not args.mlflow else uri
        print(f"MLflow: experiment {experiment!r} at {uri}; open it with {where}")


def cmd_tune(args, sess):
    if args.mode == "local":
        sys.exit("tuning runs in the cloud only (SDK v3 has no local tuning): add --mode cloud")
    model_trainer = sdk.trainer(
        sess,
        args.mode,
        args.image_uri,
        args.role,
        args.instance_type,
        1,
        parse_assignments(args.hyperparameters),
        output_path=args.output,
    )
    sdk.tuner(model_trainer).tune(inputs=sdk.channels(args.data), wait=False)


COMMANDS = {
    "train": cmd_train,
    "predict": cmd_predict,
    "transform": cmd_transform,
    "sweep": cmd_sweep,
    "tune": cmd_tune,
    "mme": cmd_mme,
}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("command", choices=list(COMMANDS))
    parser.add_argument("hyperparameters", nargs="*", metavar="NAME=VALUE")
    parser.add_argument("--mode", choices=["local", "cloud"], default="local")
    parser.add_argument("--image-uri", default=sdk.LOCAL_IMAGE)
    parser.add_argument("--role", default=sdk.LOCAL_ROLE, help="SageMaker execution role (cloud)")
    parser.add_argument(
        "--data",
        default=os.path.join(ROOT, "data"),
        help="folder or s3:// prefix holding training/ and testing/",
    )
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument(
        "--instance-type",
        help=f"default: local_cpu, local_gpu or {sdk.CLOUD_TRAINING_INSTANCE}",
    )
    parser.add_argument(
        "--serving-instance-type",
        help=f"default: local_cpu, local_gpu or {sdk.CLOUD_SERVING_INSTANCE}",
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
        choices=["torchrun"],
        help="train: your script under torchrun across the instances (default: once a host)",
    )
    parser.add_argument(
        "--model-data",
        help="model.tar.gz to deploy (default: the last one); mme: the s3:// prefix of the models",
    )
    parser.add_argument(
        "--mlflow",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        metavar="URI",
        help="MLflow tracking server (a URL, or a SageMaker managed MLflow ARN) the training jobs "
        "log to (default: $MLFLOW_TRACKING_URI); a local sweep without one starts its own",
    )
    parser.add_argument(
        "--experiment",
        default=os.environ.get("MLFLOW_EXPERIMENT_NAME", "mnist"),
        help="MLflow experiment of the jobs (default: $MLFLOW_EXPERIMENT_NAME, else mnist)",
    )
    parser.add_argument(
        "--mlflow-store",
        default=os.path.join(ROOT, "build", "mlflow"),
        help="where the MLflow server a local sweep starts keeps its runs (`make mlflow-ui`)",
    )
    parser.add_argument(
        "--work",
        default=os.path.join(ROOT, "build", "sagemaker"),
        help="local folder for outputs and the last model's location",
    )
    args = parser.parse_intermixed_args(argv)
    local = args.mode == "local"
    args.instance_type = args.instance_type or (
        sdk.local_instance_type() if local else sdk.CLOUD_TRAINING_INSTANCE
    )
    args.serving_instance_type = args.serving_instance_type or (
        sdk.local_instance_type() if local else sdk.CLOUD_SERVING_INSTANCE
    )
    if local and (args.output or args.checkpoints or args.spot):
        parser.error("--output, --checkpoints and --spot are for --mode cloud")
    if local and args.mlflow and urllib.parse.urlparse(args.mlflow).hostname in LOOPBACK:
        parser.error(
            f"--mlflow {args.mlflow}: local jobs run in containers, where {LOOPBACK[0]} is the "
            "container itself; give the server's address on Docker's bridge (`make mlflow-ui` "
            "starts one there)"
        )
    os.makedirs(args.work, exist_ok=True)
    sess = sdk.session(args.mode)
    COMMANDS[args.command](args, sess)


if __name__ == "__main__":
    main()
