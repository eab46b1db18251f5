"""The original project's experiment: the baseline CNN at five widths, then the default model,
one training job each, reported beside the original project's results."""

import os
import tempfile
import time

from local_test.sdk import channels, estimator, read_metrics, uri

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
        output = uri(tempfile.mkdtemp(prefix="sweep-", dir=args.work))
        est = estimator(
            sess,
            args.image_uri,
            args.role,
            args.instance_type,
            1,
            dict(hyperparameters, epochs=epochs),
            output,
        )
        started = time.monotonic()
        est.fit(inputs or channels(args.data), logs=False)
        rows.append(
            (label, read_metrics(est.model_data)["test_accuracy"], time.monotonic() - started)
        )
    return rows


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
