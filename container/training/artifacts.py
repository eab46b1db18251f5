"""What training leaves behind: the model folder (packed into model.tar.gz by SageMaker)
and the reports in the output data folder."""

import json
import os
from dataclasses import asdict

import torch

from container import torchscript
from container.files import (
    CONFUSION_PLOT,
    CURVES_PLOT,
    HISTORY_FILE,
    METRICS_FILE,
    STATE_DICT_FILE,
    TORCHSCRIPT_FILE,
)
from model.networks import NUM_CLASSES

CHECKPOINT_FORMAT = 1  # bump when the layout of model.pth changes


def save_model(net, config, model_dir, metrics):
    """TorchScript, the state dict with the config that rebuilds the net, and metrics.json."""
    os.makedirs(model_dir, exist_ok=True)
    torchscript.save(net, os.path.join(model_dir, TORCHSCRIPT_FILE))
    torch.save(
        {"format": CHECKPOINT_FORMAT, "config": asdict(config), "state_dict": net.state_dict()},
        os.path.join(model_dir, STATE_DICT_FILE),
    )
    save_metrics(config, model_dir, metrics)


def save_metrics(config, model_dir, metrics):
    """metrics.json: ``metrics`` and the net's config."""
    with open(os.path.join(model_dir, METRICS_FILE), "w") as f:
        json.dump({**metrics, "config": asdict(config)}, f, indent=2)


def confusion_matrix(predictions, labels):
    """(10, 10) counts: row = true digit, column = predicted digit."""
    flat = labels.long() * NUM_CLASSES + predictions.long()
    return torch.bincount(flat, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def save_reports(history, predictions, labels, output_dir):
    """history.json, the training curves and the confusion matrix as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    os.makedirs(output_dir, exist_ok=True)
    matrix = confusion_matrix(predictions, labels)
    with open(os.path.join(output_dir, HISTORY_FILE), "w") as f:
        json.dump({"epochs": history, "confusion_matrix": matrix.tolist()}, f, indent=2)

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot(epochs, [h["test_loss"] for h in history], "o-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_loss.legend()
    ax_acc.plot(epochs, [h["test_accuracy"] for h in history], "o-", color="C2")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, CURVES_PLOT), dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5.5))
    image = ax.imshow(matrix.log1p(), cmap="Blues")
    for true in range(NUM_CLASSES):
        for pred in range(NUM_CLASSES):
            count = int(matrix[true, pred])
            if count:
                ax.text(
                    pred,
                    true,
                    count,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if true == pred else "black",
                )
    ax.set(
        xticks=range(NUM_CLASSES),
        yticks=range(NUM_CLASSES),
        xlabel="predicted",
        ylabel="true",
        title=f"Confusion matrix ({int(matrix.trace())}/{int(matrix.sum())} right)",
    )
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, CONFUSION_PLOT), dpi=100)
    plt.close(fig)
