"""`combine`: one model of several trained apart, through its command line and the serving
hooks."""

import json
import os
import re
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch

from container.combine import main
from container.files import extract_tar
from container.serving.hooks import model_fn, predict_fn
from local_test import ROOT
from tests.helpers import tiny_model_dir


def models(tmp_path, *settings):
    """A tiny untrained model folder for each dict of net settings, each of its own seed."""
    folders = []
    for seed, each in enumerate(settings):
        torch.manual_seed(seed)
        folder = tmp_path / f"model-{seed}"
        folder.mkdir()
        folders.append(tiny_model_dir(folder, **each))
    return folders


def probabilities(folder, x):
    return predict_fn(x, model_fn(folder))


def test_the_combined_archive_serves_the_mean_of_every_nets_probabilities(tmp_path):
    single, ensemble = models(tmp_path, {}, {"members": 2})
    out = tmp_path / "model.tar.gz"
    done = subprocess.run(
        [sys.executable, "-m", "container", "combine", "--out", str(out), single, ensemble],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"3 nets in {out}" in done.stdout
    unpacked = tmp_path / "unpacked"
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["metrics.json", "model.pt", "model.pth"]
    extract_tar(out, unpacked)
    x = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    # The ensemble's two members count as two of the committee's three nets.
    expected = (probabilities(single, x) + 2 * probabilities(ensemble, x)) / 3
    np.testing.assert_allclose(probabilities(str(unpacked), x), expected, atol=1e-5)
    metrics = json.loads((unpacked / "metrics.json").read_text())
    assert (metrics["members"], metrics["config"]["members"]) == (3, 3)
    assert metrics["combined_from"] == [single, ensemble]
    os.remove(unpacked / "model.pth")  # the TorchScript copy serves the same
    np.testing.assert_allclose(probabilities(str(unpacked), x), expected, atol=1e-5)


def test_models_of_shifted_views_combine_into_one_of_shifted_views(tmp_path):
    first, second = models(tmp_path, {"shift_views": True}, {"shift_views": True})
    main(["--out", str(tmp_path / "out"), first, second])
    x = np.random.default_rng(1).random((8, 1, 28, 28), dtype=np.float32)
    expected = (probabilities(first, x) + probabilities(second, x)) / 2
    combined = model_fn(str(tmp_path / "out"))
    assert combined.views == 5
    np.testing.assert_allclose(predict_fn(x, combined), expected, atol=1e-5)


def test_test_accuracy_of_the_committee_and_of_each_model(tmp_path, tiny_channel):
    first, second = models(tmp_path, {}, {})
    main(["--out", str(tmp_path / "out"), "--test", tiny_channel, first, second])
    with np.load(os.path.join(tiny_channel, "mnist.npz")) as data:
        x = data["x_test"][:, None].astype(np.float32) / 255
        labels = data["y_test"]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for folder, accuracy in [
        *zip([first, second], metrics["member_test_accuracy"], strict=True),
        (str(tmp_path / "out"), metrics["test_accuracy"]),
    ]:
        assert accuracy == pytest.approx(
            100 * np.mean(probabilities(folder, x).argmax(1) == labels)
        )


def test_what_cannot_be_combined_is_refused_with_the_reason(tmp_path):
    narrow, wide = models(tmp_path, {}, {"hidden_channels": 8})
    script_only = tmp_path / "script-only"
    script_only.mkdir()
    (script_only / "model.pt").write_bytes(b"")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "model.pth").write_bytes(b"")
    for argv, reason in [
        ([narrow, wide], f"{wide} differs from {narrow} in hidden_channels (8 against 4)"),
        ([narrow], "give two models or more to combine (got 1)"),
        ([narrow, str(script_only)], f"{script_only} holds no model.pth (found: model.pt)"),
        (
            [narrow, str(tmp_path / "nowhere")],
            f"{tmp_path / 'nowhere'}: neither a model folder nor a model.tar.gz",
        ),
        ([narrow, str(taken)], f"{taken}: model.pth is not one training wrote"),
    ]:
        with pytest.raises(SystemExit, match=re.escape(f"combine: {reason}")):
            main(["--out", str(tmp_path / "out"), *argv])
        assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit, match="exists and is not an empty folder"):
        main(["--out", str(taken), narrow, narrow])
    with pytest.raises(SystemExit, match="holds no test split"):
        main(["--out", str(tmp_path / "out"), "--test", str(taken), narrow, narrow])
