"""The original project's experiment: the baseline CNN at five widths, then the default model,
one training job each, reported beside the original project's results."""

import os
import tempfile
import time

from container.training.metrics import OBJECTIVE_METRIC
from container.training.tracking import quiet_arn_plugin
from local_test import sdk
from local_test.job_files import read_metrics

# The original project's experiment: the baseline CNN's width, 2 epochs each.
SWEEP_WIDTHS = (2, 5, 10, 20, 32)
ORIGINAL_RESULT = "about 95-97"


def run(
    sess,
    args,
    widths=SWEEP_WIDTHS,
    epochs=2,
    inputs=None,
    tracking_uri=None,
    experiment=None,
    with_default=True,
):
    """One training job per width of the baseline model, then (``with_default``) the default
    model; rows of (label, test accuracy, seconds). With ``tracking_uri``, each job logs into an
    MLflow run the sweep makes for it in ``experiment``, tagged with the sweep's ID, and the
    rows are read back from MLflow."""
    runs = [
        (f"baseline, hidden_channels={w}", {"model": "baseline", "hidden_channels": w})
        for w in widths
    ] + ([("default (bncnn)", {})] if with_default else [])
    sweep_id = time.strftime("%Y%m%d-%H%M%S")
    rows, run_ids = [], []
    for label, hyperparameters in runs:
        environment = None
        if tracking_uri:
            run_id = new_run(tracking_uri, experiment, label, sweep_id)
            run_ids.append(run_id)
            environment = {"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_RUN_ID": run_id}
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
            environment=environment,
        )
        started = time.monotonic()
        model_trainer.train(input_data_config=inputs or sdk.channels(args.data), logs=False)
        rows.append((label, test_accuracy(model_trainer), time.monotonic() - started))
    if tracking_uri:
        return rows_from_mlflow(tracking_uri, run_ids, rows)
    return rows


def new_run(tracking_uri, experiment, label, sweep_id):
    """An MLflow run for one job of the sweep, which the job continues (MLFLOW_RUN_ID)."""
    from mlflow import MlflowClient

    quiet_arn_plugin(tracking_uri)
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    return client.create_run(
        experiment_id, run_name=label, tags={"sweep": sweep_id, "sweep.job": label}
    ).info.run_id


def rows_from_mlflow(tracking_uri, run_ids, launched):
    """(label, final test accuracy, job wall seconds) of each run as MLflow recorded it; a job
    that logged nothing (its tracking failed) keeps what the launcher read from its model."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    rows = []
    for run_id, (label, accuracy, seconds) in zip(run_ids, launched, strict=True):
        run = client.get_run(run_id)
        rows.append(
            (run.info.run_name, run.data.metrics.get("final_test_accuracy", accuracy), seconds)
        )
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
