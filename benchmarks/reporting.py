"""Where the benchmarks put their Markdown tables."""

import os


def write_report(path, report):
    """Write ``report`` to ``path`` (making its folder) and print it."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(report)
    print("\n" + report)
