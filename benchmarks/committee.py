"""Models trained apart, alone and as committees that average their probabilities (what an
ensemble of them would answer), scored on the test set through the serving hooks.

    python -m benchmarks.committee build/bench_train/best-seed-*/model

For each committee size: how many committees there are and their mean, lowest and highest test
accuracy; then how many test images every model gets wrong; then all of them as one model
(`combine`): its test accuracy, and what serving it costs against the first model alone.
"""

import argparse
import itertools
import os
import tempfile

import numpy as np

from benchmarks.bench_train import predict_rate
from benchmarks.reporting import write_report
from container.combine import CombineError, combine
from container.serving.hooks import model_fn, predict_fn
from container.serving.pixels import to_batch
from container.training import artifacts
from local_test.job_files import load_test_set


def committee_rows(probabilities, labels):
    """(size, committees, mean, lowest, highest accuracy %) for every size of committee drawn
    from ``probabilities`` (one (N, 10) array a model)."""
    rows = []
    for size in range(1, len(probabilities) + 1):
        accuracies = [
            100.0 * np.mean(np.mean([probabilities[i] for i in members], 0).argmax(1) == labels)
            for members in itertools.combinations(range(len(probabilities)), size)
        ]
        rows.append((size, len(accuracies), np.mean(accuracies), min(accuracies), max(accuracies)))
    return rows


def wrong_everywhere(probabilities, labels):
    """(images every model gets wrong, images some model gets wrong)."""
    wrong = [p.argmax(1) != labels for p in probabilities]
    return int(np.logical_and.reduce(wrong).sum()), int(np.logical_or.reduce(wrong).sum())


def as_one_model(models, images, labels):
    """A sentence on ``models`` made one model by `combine`: its test accuracy and predict_fn's
    rate against the first model's; or why they cannot be."""
    with tempfile.TemporaryDirectory(prefix="committee-") as scratch:
        try:
            net, config, _ = combine(models, scratch)
        except CombineError as e:
            return f"Not combined into one model: {e}."
        folder = os.path.join(scratch, "combined")
        artifacts.save_model(net, config, folder, {})
        combined = predict_fn(images, model_fn(folder))
        rates = [predict_rate(f, images[:1000], repeats=20)[0] for f in (models[0], folder)]
    return (
        f"All {config.members} nets as one model (`combine`): test accuracy "
        f"{100 * np.mean(combined.argmax(1) == labels):.2f}%; predict_fn on 1,000 test images: "
        f"{rates[1]:,.0f} images/s, against {rates[0]:,.0f} for the first model alone."
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("models", nargs="+", help="model folders that training wrote")
    parser.add_argument("--data", default="data", help="folder with training/ and testing/")
    parser.add_argument("--out", default="results/committee.md", help="Markdown table")
    args = parser.parse_args()
    missing = [folder for folder in args.models if not os.path.isdir(folder)]
    if missing:
        parser.error(
            f"no model folder at {', '.join(missing)}: train them first (make bench-train)"
        )
    images, labels = load_test_set(args.data)
    images = to_batch(images)
    probabilities = [predict_fn(images, model_fn(folder)) for folder in args.models]
    lines = [
        "| models | committees | test accuracy, mean (%) | lowest (%) | highest (%) |",
        "|---|---|---|---|---|",
    ]
    for size, count, mean, lowest, highest in committee_rows(probabilities, labels):
        lines.append(f"| {size} | {count} | {mean:.3f} | {lowest:.2f} | {highest:.2f} |")
    every, some = wrong_everywhere(probabilities, labels)
    report = (
        f"Committees of {', '.join(args.models)}\n\n"
        + "\n".join(lines)
        + f"\n\nTest images every model gets wrong: {every}; that some model gets wrong: {some}.\n"
        + f"\n{as_one_model(args.models, images, labels)}\n"
    )
    write_report(args.out, report)


if __name__ == "__main__":
    main()
