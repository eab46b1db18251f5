"""The training settings as two dataclasses: what decides the model, and how the job runs.

A checkpoint stores ``asdict(config)`` of the first; it resumes only under an equal one.
"""

from dataclasses import MISSING, asdict, dataclass, fields

from container.training.tracking import TrackingSettings
from model.networks import NetConfig

OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta")
SCHEDULES = ("onecycle", "step", "constant")
BACKENDS = ("auto", "gloo", "nccl")

# The optimisation each model starts from; any hyperparameter given overrides its entry.
MODEL_DEFAULTS = {
    # One-cycle SGD with Nesterov momentum and label smoothing: 99.4% in 2 epochs.
    "bncnn": dict(
        batch_size=128,
        lr=0.4,
        momentum=0.9,
        weight_decay=5e-4,
        optimizer="sgd",
        schedule="onecycle",
        label_smoothing=0.1,
    ),
    # The original project: plain SGD, lr 0.01, momentum 0.5, batch 64.
    "baseline": dict(
        batch_size=64,
        lr=0.01,
        momentum=0.5,
        weight_decay=0.0,
        optimizer="sgd",
        schedule="constant",
        label_smoothing=0.0,
    ),
    # pytorch/examples mnist: Adadelta lr 1.0 with StepLR(gamma=0.7) each epoch.
    "examples": dict(
        batch_size=64,
        lr=1.0,
        momentum=0.0,
        weight_decay=0.0,
        optimizer="adadelta",
        schedule="step",
        label_smoothing=0.0,
    ),
}


# Whole recipes, chosen with the `preset` hyperparameter: each fills what is not given, before
# the model's own defaults. `fast` is accuracy per second; `best` is accuracy within 20 epochs.
PRESETS = {
    "fast": dict(epochs=2, augment=False, elastic=0.0, plain_epochs=0, augment_views=1, ema=0.0),
    "best": dict(
        hidden_channels=32,
        stem="full",
        epochs=20,
        augment=True,
        elastic=0.0,
        plain_epochs=0,
        augment_views=1,
        ema=0.999,
    ),
}


@dataclass(frozen=True)
class TrainConfig:
    """The hyperparameters that decide the trained model."""

    net: NetConfig
    epochs: int
    batch_size: int  # global, split across all processes
    lr: float  # the peak rate for onecycle
    momentum: float
    weight_decay: float
    optimizer: str
    schedule: str
    gamma: float  # the rate's factor per epoch for the step schedule
    label_smoothing: float
    augment: bool
    seed: int
    ema: float = 0.0  # decay of the weights' moving average that is evaluated and saved; 0: off
    elastic: float = 0.0  # pixels of elastic distortion where augment is on; 0: none
    plain_epochs: int = 0  # the last epochs train on unaugmented images, where augment is on
    augment_views: int = 1  # augmented views of each image in a batch, where augment is on

    def changed_from(self, saved):
        """The hyperparameters whose values differ from ``saved`` (an ``asdict`` of a config);
        one that ``saved`` predates counts as its default, and one this version lacks differs."""
        saved, ours = flat_config(saved), flat_config(asdict(self))
        changed = {
            name for name, value in ours.items() if saved.get(name, DEFAULTS.get(name)) != value
        }
        return sorted(changed | (saved.keys() - ours.keys()))


def _field_defaults(cls):
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def flat_config(config):
    """A config's values by hyperparameter name: the net's fields beside the others."""
    net = dict(config.get("net") or {})
    net["model"] = net.pop("arch", None)
    return {**{k: v for k, v in config.items() if k != "net"}, **net}


# A field's default where a checkpoint from before that field holds no value for it.
DEFAULTS = flat_config({**_field_defaults(TrainConfig), "net": _field_defaults(NetConfig)})


@dataclass(frozen=True)
class JobOptions:
    """How the job runs and where it reads and writes: free to change when it resumes."""

    train: str
    model_dir: str
    output_data_dir: str
    checkpoint_dir: str
    test: str | None = None
    test_batch_size: int = 1000
    backend: str = "auto"  # nccl on GPUs, gloo on CPUs
    log_interval: int = 100  # batches between 'Train Epoch' lines
    amp: bool = True  # bfloat16 (float16 where unsupported) autocast on CUDA
    tracking: TrackingSettings | None = None  # where rank 0 logs to MLflow, if anywhere
