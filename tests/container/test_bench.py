"""`make bench` in its quick mode: it runs end to end and writes its report; figures are never
asserted (they are measured and reported, on a noisy machine)."""

import json
import os
import subprocess

from local_test import ROOT
from tests.container.helpers import DOCKER, IMAGE


def test_bench_quick_mode_writes_the_report_and_chart(image, tmp_path):
    out = tmp_path / "results"
    done = subprocess.run(
        ["make", "bench", f"DOCKER={DOCKER}", f"IMAGE={IMAGE}", f"BENCH_ARGS=--quick --out {out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (out / "bench.md").read_text()
    assert "one image, JSON" in report and "256 images, npy" in report
    assert os.path.getsize(out / "bench.png") > 0
    results = json.loads((out / "bench.json").read_text())
    assert all(400 <= status < 500 for status in results["ours"]["malformed"])
    assert results["ours"]["loads"]["one image, JSON c1"]["errors"] == 0
    assert results["training"][0]["accuracy"]
