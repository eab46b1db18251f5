"""`combine`: one model from several that training wrote, serving the mean of their
probabilities: a committee of nets trained apart (other seeds, say) behind one endpoint.

    python -m container combine --out OUT MODEL MODEL [MODEL ...] [--test DIR]

A MODEL is a model folder or a model.tar.gz, as a training job leaves them; OUT is a new folder,
or a name ending in .tar.gz for an archive to upload. The nets must share their config but for
`members`; an ensemble among them adds each of its members. With --test (a folder of MNIST test
files, as the testing channel takes them) each model and the committee are scored on it.
"""

import argparse
import os
import sys
import tarfile
import tempfile
from dataclasses import asdict, replace

import torch

from container.files import STATE_DICT_FILE, extract_tar
from container.training import artifacts
from container.training.data import DataError, load_channel
from model.networks import Ensemble, NetConfig, ShiftViews, build_model

USAGE = "python -m container combine --out OUT MODEL MODEL [MODEL ...] [--test DIR]"


class CombineError(ValueError):
    """What is wrong with the models or OUT, in words for the command line."""


def read_model(path, into):
    """(folder, NetConfig, state dict) of the model at ``path``: a folder, or a model.tar.gz
    that is unpacked under ``into``."""
    folder = path
    if os.path.isfile(path) and tarfile.is_tarfile(path):
        folder = tempfile.mkdtemp(dir=into)
        extract_tar(path, folder)
    elif not os.path.isdir(path):
        raise CombineError(f"{path}: neither a model folder nor a model.tar.gz")
    state_path = os.path.join(folder, STATE_DICT_FILE)
    if not os.path.isfile(state_path):
        found = ", ".join(sorted(os.listdir(folder))) or "nothing"
        raise CombineError(
            f"{path} holds no {STATE_DICT_FILE} (found: {found}): combine takes the state dict "
            "and config that training writes"
        )
    try:
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        return folder, NetConfig(**saved["config"]), saved["state_dict"]
    except Exception as e:  # noqa: BLE001 - torch and the config raise many kinds
        raise CombineError(f"{path}: {STATE_DICT_FILE} is not one training wrote ({e})") from None


def without_views(net):
    """``net`` without its ShiftViews wrapper, if it has one."""
    return net.net if isinstance(net, ShiftViews) else net


def members_of(config, state_dict):
    """The single nets in a saved model: itself, or an ensemble's members."""
    net = build_model(config)
    net.load_state_dict(state_dict)
    inner = without_views(net)
    return list(inner.members) if isinstance(inner, Ensemble) else [inner]


def combine(paths, scratch):
    """(net, config, folders): the committee of the models at ``paths`` in eval mode, and the
    folders they were read from."""
    if len(paths) < 2:
        raise CombineError(f"give two models or more to combine (got {len(paths)})")
    folders, shared, members = [], None, []
    for path in paths:
        folder, config, state_dict = read_model(path, scratch)
        ours = asdict(replace(config, members=1))
        shared = shared or ours
        for name, value in ours.items():
            if value != shared[name]:
                raise CombineError(
                    f"{path} differs from {paths[0]} in {name} ({value!r} against "
                    f"{shared[name]!r}): combine nets of one config"
                )
        folders.append(folder)
        members += members_of(config, state_dict)
    config = replace(config, members=len(members))
    net = build_model(config)
    for slot, member in zip(without_views(net).members, members, strict=True):
        slot.load_state_dict(member.state_dict())
    return net.eval(), config, folders


def accuracy(model_dir, test):
    """Test accuracy (%) of the model in ``model_dir``, through the serving hooks."""
    from container.serving.hooks import model_fn, predict_fn

    probabilities = predict_fn(test.images.float().div(255).numpy(), model_fn(model_dir))
    right = int((torch.from_numpy(probabilities).argmax(1) == test.labels).sum())
    return 100.0 * right / len(test)


def check_out(out):
    """Refuses an OUT that would overwrite or mix with what is there."""
    if out.endswith(".tar.gz"):
        parent = os.path.dirname(out) or "."
        if os.path.exists(out):
            raise CombineError(f"--out {out} exists: name a new archive")
        if not os.path.isdir(parent):
            raise CombineError(f"--out {out}: folder {parent} does not exist")
    elif os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise CombineError(f"--out {out} exists and is not an empty folder: name a new one")


def load_test(folder):
    """The test split of the MNIST files in ``folder``."""
    test = load_channel(folder, "test").get("test")
    if test is None:
        raise CombineError(f"--test {folder} holds no test split (t10k-* files or x_test)")
    return test


def main(argv=None):
    parser = argparse.ArgumentParser(prog="combine", usage=USAGE, description=__doc__)
    parser.add_argument("models", nargs="+", help="model folders or model.tar.gz files")
    parser.add_argument("--out", required=True, help="a new folder, or NAME.tar.gz")
    parser.add_argument("--test", help="a folder of MNIST test files to score them on")
    args = parser.parse_args(argv)
    archive = args.out.endswith(".tar.gz")
    try:
        check_out(args.out)
        test = load_test(args.test) if args.test else None
        with tempfile.TemporaryDirectory(prefix="combine-") as scratch:
            net, config, folders = combine(args.models, scratch)
            folder = tempfile.mkdtemp(dir=scratch) if archive else args.out
            metrics = {
                "model": config.arch,
                "members": config.members,
                "combined_from": [os.path.abspath(path) for path in args.models],
            }
            artifacts.save_model(net, config, folder, metrics)
            if test is not None:
                metrics["member_test_accuracy"] = [accuracy(f, test) for f in folders]
                metrics["test_accuracy"] = accuracy(folder, test)
                artifacts.save_metrics(config, folder, metrics)
                print(
                    f"combine: test accuracy {metrics['test_accuracy']:.2f}%, the models' "
                    + ", ".join(f"{a:.2f}" for a in metrics["member_test_accuracy"]),
                    flush=True,
                )
            if archive:
                with tarfile.open(args.out, "w:gz") as tar:
                    for name in sorted(os.listdir(folder)):  # at the root, as SageMaker packs
                        tar.add(os.path.join(folder, name), arcname=name)
    except (CombineError, DataError, OSError, tarfile.TarError) as e:
        sys.exit(f"combine: {e}")
    print(f"combine: {config.members} nets in {args.out}", flush=True)
