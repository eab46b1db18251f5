"""Training hyperparameters: flags in, validated settings out.

SageMaker passes every hyperparameter as a string; the toolkit turns them into ``--name value``
flags. Flags left out take the chosen model's preset (PRESETS), so ``model=baseline`` alone
reproduces the original project's run.
"""
import argparse
import os
import re

from sagemaker_training.errors import ClientError

from container import settings
from model.networks import ARCHES, make_config

OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta")
SCHEDULES = ("onecycle", "step", "constant")
BACKENDS = ("auto", "gloo", "nccl")

# Training settings each model starts from; any flag given overrides its entry.
PRESETS = {
    # One-cycle SGD with Nesterov momentum and label smoothing: 99.4% in 2 epochs, 99.0% in
    # the first.
    "bncnn": dict(batch_size=128, lr=0.4, momentum=0.9, weight_decay=5e-4, optimizer="sgd",
                  schedule="onecycle", label_smoothing=0.1),
    # The original project: plain SGD, lr 0.01, momentum 0.5, batch 64.
    "baseline": dict(batch_size=64, lr=0.01, momentum=0.5, weight_decay=0.0, optimizer="sgd",
                     schedule="constant", label_smoothing=0.0),
    # pytorch/examples mnist: Adadelta lr 1.0 with StepLR(gamma=0.7) each epoch.
    "examples": dict(batch_size=64, lr=1.0, momentum=0.0, weight_decay=0.0,
                     optimizer="adadelta", schedule="step", label_smoothing=0.0),
}


class HyperparameterError(ClientError):
    """A hyperparameter is unknown or out of range; the message says what is allowed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        if message.startswith("unrecognized arguments"):
            names = [a.lstrip("-") for a in message.split(":", 1)[1].split() if a.startswith("--")]
            known = sorted(a.dest for a in self._actions if a.dest != "help")
            raise HyperparameterError(
                f"unknown hyperparameter(s): {', '.join(names) or message}. "
                f"Known: {', '.join(known)}")
        match = re.match(r"argument --([\w-]+)\S*: (.*)", message)
        if not match:
            raise HyperparameterError(f"hyperparameter error: {message}")
        name, problem = match.group(1).replace("-", "_"), match.group(2)
        choices = re.match(r"invalid choice: (.*) \(choose from (.*)\)", problem)
        if choices:
            problem = f"{choices.group(1)} is not allowed; choose from " + \
                ", ".join(c.strip(" '") for c in choices.group(2).split(","))
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
        if number != number or low is not None and (number <= low if low_open else number < low) \
                or high is not None and number > high:
            bound = f"{'above' if low_open else 'at least'} {low}" if low is not None else ""
            if high is not None:
                bound += f"{' and ' if bound else ''}at most {high}"
            raise argparse.ArgumentTypeError(f"{value!r} is out of range: must be {bound}")
        return number
    parse.__name__ = kind.__name__
    return parse


def build_parser(environ=os.environ):
    env = environ.get
    p = _Parser(description="Train an MNIST digit classifier under the SageMaker contract.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False)
    # Model; None means the architecture's own default (model.networks.ARCH_DEFAULTS).
    p.add_argument("--model", choices=ARCHES, default="bncnn")
    p.add_argument("--hidden_channels", "--hidden-channels", type=_ranged(int, 1, 1024))
    p.add_argument("--kernel_size", "--kernel-size", type=_ranged(int, 1))
    p.add_argument("--dropout", type=_ranged(float, 0.0, 1.0))
    # Optimisation; None means the model's preset (PRESETS).
    p.add_argument("--epochs", type=_ranged(int, 1, 1000), default=2)
    p.add_argument("--batch_size", "--batch-size", type=_ranged(int, 1, 60000),
                   help="global batch, split across all processes")
    p.add_argument("--test_batch_size", "--test-batch-size", type=_ranged(int, 1), default=1000)
    p.add_argument("--lr", type=_ranged(float, 0.0, low_open=True),
                   help="peak learning rate for onecycle")
    p.add_argument("--momentum", type=_ranged(float, 0.0, 1.0))
    p.add_argument("--weight_decay", "--weight-decay", type=_ranged(float, 0.0))
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--schedule", choices=SCHEDULES)
    p.add_argument("--gamma", type=_ranged(float, 0.0, 1.0, low_open=True), default=0.7,
                   help="learning-rate factor per epoch for the step schedule")
    p.add_argument("--label_smoothing", "--label-smoothing", type=_ranged(float, 0.0, 0.99))
    p.add_argument("--augment", type=_bool, default=False,
                   help="random shifts, rotations and scaling of training images")
    p.add_argument("--seed", type=_ranged(int, 0, 2**31 - 1), default=1)
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="distributed backend: auto picks nccl on GPU, gloo on CPU")
    p.add_argument("--log_interval", "--log-interval", type=_ranged(int, 1), default=100,
                   help="batches between 'Train Epoch' log lines")
    p.add_argument("--amp", type=_bool, default=True,
                   help="bfloat16/float16 autocast on CUDA (ignored on CPU)")
    # Paths, from the toolkit's SM_* variables.
    p.add_argument("--model_dir", "--model-dir", default=env(settings.MODEL_DIR_ENV))
    p.add_argument("--output_data_dir", "--output-data-dir", default=env(settings.OUTPUT_DATA_DIR_ENV))
    p.add_argument("--train", default=env(settings.TRAINING_CHANNEL_ENV))
    p.add_argument("--test", default=env(settings.TESTING_CHANNEL_ENV))
    p.add_argument("--checkpoint_dir", "--checkpoint-dir",
                   default=settings.default_checkpoint_dir())
    return p


def parse_args(argv, environ=os.environ):
    """Validated settings from ``argv``, with presets filled in and the net config attached."""
    args = build_parser(environ).parse_args(argv)
    for name, value in PRESETS[args.model].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        args.net_config = make_config(args.model, hidden_channels=args.hidden_channels,
                                      kernel_size=args.kernel_size, dropout=args.dropout)
    except ValueError as e:
        raise HyperparameterError(f"invalid hyperparameter: {e}") from None
    required = {"train": f"no 'training' channel ({settings.TRAINING_CHANNEL_ENV} is unset): "
                         "give the job a training channel holding MNIST",
                "model_dir": f"no model folder ({settings.MODEL_DIR_ENV} is unset)",
                "output_data_dir": f"no output folder ({settings.OUTPUT_DATA_DIR_ENV} is unset)"}
    for name, problem in required.items():
        if not getattr(args, name):
            raise HyperparameterError(problem)
    return args

