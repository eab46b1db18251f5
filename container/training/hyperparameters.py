"""Training hyperparameters: flags in, validated settings out.

SageMaker passes every hyperparameter as a string; the toolkit turns them into ``--name value``
flags, and paths arrive as SM_* variables used as the flags' defaults. Flags left out take the
chosen preset's values (config.PRESETS), then the model's own (config.MODEL_DEFAULTS), so
``model=baseline`` alone reproduces the original project's run.
"""

import argparse
import math
import os
import re

from sagemaker_training.errors import ClientError

from container.files import base_dir
from container.training import parameters as p
from container.training import tracking
from container.training.config import (
    BACKENDS,
    DEFAULTS,
    MODEL_DEFAULTS,
    OPTIMIZERS,
    PRESETS,
    SCHEDULES,
    JobOptions,
    TrainConfig,
)
from model.networks import ARCHES, BNCNN_ONLY, STEMS, make_config


class HyperparameterError(ClientError):
    """A hyperparameter is unknown or out of range; the message says what is allowed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        if message.startswith("unrecognized arguments"):
            names = [a.lstrip("-") for a in message.split(":", 1)[1].split() if a.startswith("--")]
            known = sorted(a.dest for a in self._actions if a.dest != "help")
            raise HyperparameterError(
                f"unknown hyperparameter(s): {', '.join(names) or message}. "
                f"Known: {', '.join(known)}"
            )
        match = re.match(r"argument --([\w-]+)\S*: (.*)", message)
        if not match:
            raise HyperparameterError(f"hyperparameter error: {message}")
        name, problem = match.group(1).replace("-", "_"), match.group(2)
        choices = re.match(r"invalid choice: (.*) \(choose from (.*)\)", problem)
        if choices:
            problem = f"{choices.group(1)} is not allowed; choose from " + ", ".join(
                c.strip(" '") for c in choices.group(2).split(",")
            )
        problem = re.sub(r"^invalid \w+ value: ", "", problem)
        raise HyperparameterError(f"hyperparameter {name}: {problem}")


def _bool(value):
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not true or false")


def _ranged(kind, low=None, high=None, low_open=False):
    def parse(value):
        try:
            number = kind(value)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{value!r} is not {noun}") from None
        if (
            math.isnan(number)
            or low is not None
            and (number <= low if low_open else number < low)
            or high is not None
            and number > high
        ):
            bound = f"{'above' if low_open else 'at least'} {low}" if low is not None else ""
            if high is not None:
                bound += f"{' and ' if bound else ''}at most {high}"
            raise argparse.ArgumentTypeError(f"{value!r} is out of range: must be {bound}")
        return number

    parse.__name__ = kind.__name__
    return parse


def build_parser(environ=os.environ):
    env = environ.get
    parser = _Parser(
        description="Train an MNIST digit classifier under the SageMaker contract.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    add = parser.add_argument
    add(
        "--preset",
        choices=tuple(PRESETS),
        default="fast",
        help="fast: 99.4%% in 2 epochs; best: wider, augmented, weights averaged, 20 epochs",
    )
    # Model; None means the architecture's own default (model.networks.ARCH_DEFAULTS).
    add("--model", choices=ARCHES, default="bncnn")
    add("--hidden_channels", "--hidden-channels", type=_ranged(int, 1, 1024))
    add("--kernel_size", "--kernel-size", type=_ranged(int, 1))
    add("--dropout", type=_ranged(float, 0.0, 1.0))
    add("--depth", type=_ranged(int, 1, 4), help="bncnn: convolutions in each of its 3 stages")
    add("--stem", choices=STEMS, help="bncnn: strided (5x5, stride 2) or full (3x3 at 28x28 first)")
    add(
        "--members",
        type=_ranged(int, 1, 16),
        default=1,
        help="nets trained side by side in one model, their probabilities averaged",
    )
    add(
        "--shift_views",
        "--shift-views",
        type=_bool,
        default=False,
        help="served and tested: each image's probabilities averaged with its four 1-pixel shifts'",
    )
    # Optimisation; None means the preset's value, then the model's default.
    add("--epochs", type=_ranged(int, 1, 1000))
    add(
        "--batch_size",
        "--batch-size",
        type=_ranged(int, 1, 60000),
        help="global batch, split across all processes",
    )
    add("--lr", type=_ranged(float, 0.0, low_open=True), help="peak learning rate for onecycle")
    add("--momentum", type=_ranged(float, 0.0, 1.0))
    add("--weight_decay", "--weight-decay", type=_ranged(float, 0.0))
    add("--optimizer", choices=OPTIMIZERS)
    add("--schedule", choices=SCHEDULES)
    add(
        "--gamma",
        type=_ranged(float, 0.0, 1.0, low_open=True),
        default=0.7,
        help="learning-rate factor per epoch for the step schedule",
    )
    add("--label_smoothing", "--label-smoothing", type=_ranged(float, 0.0, 0.99))
    add("--augment", type=_bool, help="random shifts, rotations and scaling of training images")
    add(
        "--elastic",
        type=_ranged(float, 0.0, 10.0),
        help="pixels of smooth random displacement added where augment is on; 0: none",
    )
    add(
        "--plain_epochs",
        "--plain-epochs",
        type=_ranged(int, 0, 1000),
        help="with augment, the last this many epochs train on unaugmented images",
    )
    add(
        "--augment_views",
        "--augment-views",
        type=_ranged(int, 1, 16),
        help="with augment, each batch holds this many augmented views of each of its images",
    )
    add(
        "--ema",
        type=_ranged(float, 0.0, 0.99999),
        help="decay per step of the weights' moving average, evaluated and saved; 0: off",
    )
    add("--seed", type=_ranged(int, 0, 2**31 - 1), default=1)
    # How the job runs.
    add("--test_batch_size", "--test-batch-size", type=_ranged(int, 1), default=1000)
    add(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="distributed backend: auto picks nccl on GPU, gloo on CPU",
    )
    add(
        "--log_interval",
        "--log-interval",
        type=_ranged(int, 1),
        default=100,
        help="batches between 'Train Epoch' log lines",
    )
    add(
        "--amp", type=_bool, default=True, help="bfloat16/float16 autocast on CUDA (ignored on CPU)"
    )
    # Paths, from the toolkit's SM_* variables.
    add("--model_dir", "--model-dir", default=env(p.MODEL_DIR_ENV))
    add("--output_data_dir", "--output-data-dir", default=env(p.OUTPUT_DATA_DIR_ENV))
    add("--train", default=env(p.TRAINING_CHANNEL_ENV))
    add("--test", default=env(p.TESTING_CHANNEL_ENV))
    add(
        "--checkpoint_dir",
        "--checkpoint-dir",
        default=env(p.CHECKPOINT_DIR_ENV) or os.path.join(base_dir(environ), "checkpoints"),
    )
    return parser


# Settings that act on augmented images alone, and why; each is off at its TrainConfig default.
AUGMENT_ONLY = {
    "elastic": "distorts only augmented images",
    "plain_epochs": "ends the augmentation early, but augment is off",
    "augment_views": "views of augmented images, but augment is off",
}

REQUIRED = {
    "train": f"no 'training' channel ({p.TRAINING_CHANNEL_ENV} is unset): give the job a "
    "training channel holding MNIST",
    "model_dir": f"no model folder ({p.MODEL_DIR_ENV} is unset)",
    "output_data_dir": f"no output folder ({p.OUTPUT_DATA_DIR_ENV} is unset)",
}


def parse_hyperparameters(argv, environ=os.environ):
    """(TrainConfig, JobOptions) from ``argv``; a flag left out takes the preset's value, then the
    model's default."""
    args = vars(build_parser(environ).parse_args(argv))
    for name, value in PRESETS[args.pop("preset")].items():  # bncnn's own pass over the others
        if args[name] is None and (name not in BNCNN_ONLY or args["model"] == "bncnn"):
            args[name] = value
    for name, why in AUGMENT_ONLY.items():  # the presets leave these off: one was given
        if args[name] not in (None, DEFAULTS[name]) and not args["augment"]:
            raise HyperparameterError(
                f"hyperparameter {name}: {args[name]} {why}; set augment=true as well"
            )
    if args["plain_epochs"] and args["plain_epochs"] >= args["epochs"]:
        raise HyperparameterError(
            f"hyperparameter plain_epochs: {args['plain_epochs']} leaves no augmented epoch of "
            f"{args['epochs']}; it must be less than epochs"
        )
    model = args.pop("model")
    net = {
        name: args.pop(name)
        for name in (
            "hidden_channels",
            "kernel_size",
            "dropout",
            "members",
            "shift_views",
            "depth",
            "stem",
        )
    }
    try:
        net_config = make_config(model, **net)
    except ValueError as e:
        raise HyperparameterError(f"invalid hyperparameter: {e}") from None
    for name, value in MODEL_DEFAULTS[model].items():
        if args[name] is None:
            args[name] = value
    for name, problem in REQUIRED.items():
        if not args[name]:
            raise HyperparameterError(problem)
    job = JobOptions(
        **{name: args.pop(name) for name in JobOptions.__dataclass_fields__ if name in args},
        tracking=tracking.settings_from(environ),
    )
    return TrainConfig(net=net_config, **args), job
