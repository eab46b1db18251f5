"""Lays out a SageMaker /opt/ml tree in any folder and runs the image's `train` on it, in this
Python environment, no Docker needed (the toolkit honours SAGEMAKER_BASE_DIR).

    python -m local_test.opt_ml --base build/opt_ml --data data epochs=2 lr=0.1
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

from local_test import ROOT


def make_opt_ml(
    base, hyperparameters, channels, hosts=("localhost",), current_host=None, copy=False
):
    """A SageMaker /opt/ml tree under ``base``; every hyperparameter passed as a string, as
    SageMaker passes them. Host names must resolve, so 'localhost' stands for algo-1 outside
    a container. Channels are linked, or copied (``copy``) for a tree mounted into one."""
    config = os.path.join(base, "input", "config")
    os.makedirs(config, exist_ok=True)
    with open(os.path.join(config, "hyperparameters.json"), "w") as f:
        json.dump({k: str(v) for k, v in hyperparameters.items()}, f)
    with open(os.path.join(config, "resourceconfig.json"), "w") as f:
        json.dump({"current_host": current_host or hosts[0], "hosts": list(hosts)}, f)
    with open(os.path.join(config, "inputdataconfig.json"), "w") as f:
        json.dump({name: {"TrainingInputMode": "File"} for name in channels}, f)
    os.makedirs(os.path.join(base, "input", "data"), exist_ok=True)
    for name, source in channels.items():
        target = os.path.join(base, "input", "data", name)
        if copy:
            shutil.copytree(source, target)
        else:
            os.symlink(os.path.abspath(source), target)
    return str(base)


def train_command(base):
    """(argv, environment) of the image's `train` on the tree at ``base``."""
    env = dict(os.environ, SAGEMAKER_BASE_DIR=str(base), PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    return [sys.executable, "-m", "container", "train"], env


def parse_assignments(items):
    """NAME=VALUE words from a command line as a dict; anything else ends the command."""
    hyperparameters = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"hyperparameter {item!r}: write NAME=VALUE")
        hyperparameters[name] = value
    return hyperparameters


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--base", default="build/opt_ml", help="folder for the /opt/ml tree")
    parser.add_argument("--data", default="data", help="folder with training/ and testing/")
    parser.add_argument("hyperparameters", nargs="*", metavar="NAME=VALUE")
    args = parser.parse_args()
    hyperparameters = parse_assignments(args.hyperparameters)
    shutil.rmtree(args.base, ignore_errors=True)
    channels = {name: os.path.join(args.data, name) for name in ("training", "testing")}
    base = make_opt_ml(args.base, hyperparameters, channels)
    argv, env = train_command(base)
    code = subprocess.call(argv, env=env, cwd=ROOT)
    print(f"/opt/ml tree, model and output in {base}", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
