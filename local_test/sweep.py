"""The original project's experiment: the baseline CNN at five widths, then the default model,
one training job each, reported beside the original project's results."""

import os
import tempfile
import time

from container.training.metrics import OBJECTIVE_METRIC
from local_test import sdk
from local_test.job_files import read_metrics

# The original project's experiment: the baseline CNN's width, 2 epochs each.
SWEEP_WIDTHS = (2, 5, 10, 20, 32)
ORIGINAL_RESULT = "about 95-97"


def run(sess, args, widths=SWEEP_WIDTHS, epochs=2, inputs=None):
    """One training job per width of the baseline model, then the default model; rows of
    (label, hidden_channels, test accuracy, seconds)."""
    runs = [
        (f"baseline, hidden_channels={w}", {"model": "baseline", "hidden_channels": w})
        for w in widths
    ] + [("default (bncnn)", {})]
    rows = []
    for label, hyperparameters in runs:
        model_trainer = sdk.trainer(
            sess,
            args.mode,
            args.image_uri,
            args.role,
            args.instance_type,
            1,
            dict(hyperparameters, epochs=epochs),
            output_path=args.output,
            work=tempfile.mkdtemp(prefix="sweep-", dir=args.work) if args.mode == "local" else None,
        )
        started = time.monotonic()
        model_trainer.train(input_data_config=inputs or sdk.channels(args.data), logs=False)
        rows.append((label, test_accuracy(model_trainer), time.monotonic() - started))
    return rows


def test_accuracy(model_trainer):
    """The job's final test accuracy: from metrics.json in a local model, else from the metric
    SageMaker recorded."""
    model = sdk.model_data(model_trainer)
    if os.path.exists(model):
        return read_metrics(model)["test_accuracy"]
    job = model_trainer._latest_training_job
    job.refresh()
    return next(m.value for m in job.final_metric_data_list if m.metric_name == OBJECTIVE_METRIC)


def report(rows, epochs, folder):
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
