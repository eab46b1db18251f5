"""`make bench-gpu` end to end on whatever this host has (the CPU here): short training runs of
the default and the `best` preset in the bench's own process, through the training entry point,
the batch of 1,000 through predict_fn, and `serve` answering JSON, npy and PNG. Speeds are
reported, never asserted."""

import re
import subprocess
import sys

from local_test import ROOT
from tests.helpers import DATA_DIR


def test_gpu_bench_trains_in_process_and_writes_its_report(mnist, tmp_path):
    out = tmp_path / "gpu_bench.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_gpu",
            "--data",
            DATA_DIR,
            "--epochs",
            "1",
            "--runs",
            "1",
            "--best-epochs",
            "1",
            "--repeats",
            "2",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = out.read_text()
    row = re.search(
        r"^\| default, run 1 in this process \| ([\d.]+) \| ([\d.]+|not reached) ",
        report,
        re.MULTILINE,
    )
    assert row, report
    assert float(row.group(1)) > 97, report  # one real epoch on all 60,000 images
    assert re.search(r"predict_fn on a batch of 1,000 \(median of 2\): [\d,]+ images/s", report)
    best = re.search(r"^\| preset=best, 1 epochs \| ([\d.]+) \|", report, re.MULTILINE)
    assert best and float(best.group(1)) > 97, report
    assert re.search(
        r"/ping 200 [\d.]+ s after the start; model loaded \d+ time\(s\), on cpu", report
    )
    served = dict(
        re.findall(r"^\| (JSON|npy|PNG) \| [\d,]+ \| [\d,]+ \| ([\d.]+) \|", report, re.MULTILINE)
    )
    assert set(served) == {"JSON", "npy", "PNG"}, report
    assert all(float(accuracy) > 97 for accuracy in served.values()), report
