"""Hyperparameter flags to the two settings dataclasses, and what each refusal says."""

from dataclasses import asdict

import pytest
import torch
from sagemaker_training.errors import ClientError

from container.training import checkpoints
from container.training.config import MODEL_DEFAULTS
from container.training.hyperparameters import HyperparameterError, parse_hyperparameters

PATHS = {"SM_MODEL_DIR": "/m", "SM_OUTPUT_DATA_DIR": "/o", "SM_CHANNEL_TRAINING": "/t"}


def parse(**hyperparameters):
    """As SageMaker passes them: every value a string, through the toolkit's --name flags."""
    argv = [item for k, v in hyperparameters.items() for item in (f"--{k}", str(v))]
    return parse_hyperparameters(argv, PATHS)


def test_strings_become_typed_settings():
    config, job = parse(
        epochs="3", lr="0.05", augment="true", batch_size="128", model="bncnn", log_interval="10"
    )
    assert (config.epochs, config.lr, config.augment, config.batch_size) == (3, 0.05, True, 128)
    assert job.model_dir == "/m" and job.train == "/t" and job.test is None
    assert job.log_interval == 10 and job.checkpoint_dir == "/opt/ml/checkpoints"


def test_defaults_are_the_models_preset():
    config, _ = parse()
    assert config.net.arch == "bncnn" and config.epochs == 2
    for name, value in MODEL_DEFAULTS["bncnn"].items():
        assert getattr(config, name) == value
    assert config.net.hidden_channels == 16


def test_baseline_preset_is_the_original_project():
    config, _ = parse(model="baseline")
    assert (config.optimizer, config.lr, config.momentum, config.batch_size) == (
        "sgd",
        0.01,
        0.5,
        64,
    )
    net = config.net
    assert (net.hidden_channels, net.kernel_size, net.dropout) == (32, 5, 0.2)


def test_the_best_preset_and_what_overrides_it():
    config, _ = parse(preset="best")
    assert (config.net.hidden_channels, config.epochs, config.augment, config.ema) == (
        32,
        20,
        True,
        0.999,
    )
    assert config.lr == MODEL_DEFAULTS["bncnn"]["lr"]
    config, _ = parse(preset="best", epochs="30", ema="0")
    assert (config.epochs, config.ema, config.net.hidden_channels) == (30, 0.0, 32)
    assert parse()[0].ema == 0.0
    assert parse(augment="true", elastic="2.5")[0].elastic == 2.5
    assert parse(preset="best", plain_epochs="3")[0].plain_epochs == 3
    assert parse()[0].plain_epochs == 0
    assert parse(preset="best", augment_views="2")[0].augment_views == 2
    assert parse()[0].augment_views == 1
    assert parse(augment_views="1")[0].augment_views == 1  # off, so augment may be off too
    assert parse(depth="2")[0].net.depth == 2
    assert parse(stem="full")[0].net.stem == "full"
    assert parse(preset="best")[0].net.stem == "full"
    assert parse(shift_views="true")[0].net.shift_views
    assert not parse()[0].net.shift_views
    # bncnn's own settings in a preset pass over other models
    config, _ = parse(preset="best", model="baseline")
    assert (config.net.stem, config.net.hidden_channels, config.ema) == ("strided", 32, 0.999)


def test_given_values_override_the_preset():
    config, _ = parse(model="baseline", lr="0.02", hidden_channels="10")
    assert config.lr == 0.02 and config.net.hidden_channels == 10


def test_toolkit_spelling_of_booleans():
    assert parse(augment="True")[0].augment is True
    assert parse(augment="False")[0].augment is False


@pytest.mark.parametrize(
    "hyperparameters,names,allowed",
    [
        ({"dropout": "1.5"}, "dropout", "at most 1"),
        ({"dropout": "0.99", "model": "baseline"}, "dropout", None),
        ({"optimizer": "rmsprop"}, "optimizer", "sgd, adam, adamw, adadelta"),
        ({"model": "resnet"}, "model", "bncnn, baseline, examples"),
        ({"kernel_size": "12", "model": "baseline"}, "kernel_size", "from 1 to 9"),
        ({"epochs": "0"}, "epochs", "at least 1"),
        ({"batch_size": "ten"}, "batch_size", "not an integer"),
        ({"lr": "0"}, "lr", "above 0"),
        ({"lr": "nan"}, "lr", "out of range"),
        ({"augment": "maybe"}, "augment", "not true or false"),
        ({"elastic": "2"}, "elastic", "set augment=true as well"),
        ({"elastic": "11", "augment": "true"}, "elastic", "at most 10"),
        ({"plain_epochs": "1"}, "plain_epochs", "set augment=true as well"),
        ({"plain_epochs": "2", "augment": "true"}, "plain_epochs", "less than epochs"),
        ({"plain_epochs": "-1", "augment": "true"}, "plain_epochs", "at least 0"),
        ({"augment_views": "2"}, "augment_views", "set augment=true as well"),
        ({"augment_views": "0", "augment": "true"}, "augment_views", "at least 1"),
        ({"augment_views": "17", "augment": "true"}, "augment_views", "at most 16"),
        ({"backend": "mpi"}, "backend", "auto, gloo, nccl"),
        ({"preset": "fastest"}, "preset", "fast, best"),
        ({"ema": "1"}, "ema", "at most 0.99999"),
        ({"depth": "5"}, "depth", "at most 4"),
        ({"depth": "2", "model": "baseline"}, "depth", "bncnn model alone"),
        ({"stem": "wide"}, "stem", "strided, full"),
        ({"stem": "full", "model": "baseline"}, "stem", "bncnn model alone"),
    ],
)
def test_invalid_values_name_the_hyperparameter_and_what_is_allowed(
    hyperparameters, names, allowed
):
    if allowed is None:  # a valid value
        parse(**hyperparameters)
        return
    with pytest.raises(HyperparameterError) as raised:
        parse(**hyperparameters)
    assert names in str(raised.value) and allowed in str(raised.value)


def test_dropout_of_one_is_refused_by_the_model():
    with pytest.raises(HyperparameterError, match="dropout must be at least 0 and below 1"):
        parse(dropout="1")


def test_unknown_names_are_listed_with_the_known_ones():
    with pytest.raises(HyperparameterError) as raised:
        parse(learning_rate="0.1", epochz="3")
    message = str(raised.value)
    assert "learning_rate" in message and "epochz" in message and "Known:" in message
    assert "lr" in message.split("Known:")[1]


def test_missing_paths_are_reported():
    with pytest.raises(HyperparameterError, match="no .training. channel"):
        parse_hyperparameters([], {})


def test_a_checkpoint_resumes_under_the_same_model_settings_alone():
    """What may resume is the TrainConfig; how the job runs (JobOptions) may change."""
    config, _ = parse(epochs="3", hidden_channels="8")
    same, other_job = parse(epochs="3", hidden_channels="8", log_interval="5", test_batch_size="7")
    assert same == config and other_job.log_interval == 5
    other, _ = parse(epochs="3", hidden_channels="10", seed="2")
    assert other.changed_from(asdict(config)) == ["hidden_channels", "seed"]
    assert {"model", "hidden_channels", "epochs", "seed"} <= set(config.changed_from({}))
    # A checkpoint from before ema and elastic existed resumes where they are at their default.
    older = {k: v for k, v in asdict(config).items() if k not in ("ema", "elastic")}
    assert config.changed_from(older) == []
    assert parse(epochs="3", hidden_channels="8", ema="0.9")[0].changed_from(older) == ["ema"]
    # One from a version with a setting this one lacks does not.
    assert config.changed_from({**asdict(config), "mixup": 0.2}) == ["mixup"]


def test_a_checkpoint_from_before_a_setting_existed_loads(tmp_path):
    config, _ = parse(epochs="3")
    older = {k: v for k, v in asdict(config).items() if k != "plain_epochs"}
    torch.save({"config": older, "epoch": 2}, checkpoints.checkpoint_path(tmp_path))
    assert checkpoints.load(str(tmp_path), config)["epoch"] == 2
    later, _ = parse(epochs="3", augment="true", plain_epochs="1")
    with pytest.raises(ClientError, match=r"other hyperparameters \(augment, plain_epochs\)"):
        checkpoints.load(str(tmp_path), later)
