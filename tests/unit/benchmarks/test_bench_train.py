"""The training benchmark's summary rows and sentences, from rows as `bench` returns them."""

import os

import pytest

from benchmarks.bench_train import against_examples, bench_all, best_runs, mean_row, table


def row(name, accuracy, to_99, to_995=None, seconds=10.0, predict_rate=None):
    r = {
        "name": name,
        "accuracy": accuracy,
        "to_99": to_99,
        "to_995": to_995,
        "seconds": seconds,
        "images_per_second": 1000.0,
        "peak_mb": 900.0,
    }
    return r if predict_rate is None else {**r, "predict_rate": predict_rate}


def test_the_mean_row_averages_last_epochs_and_only_targets_every_run_reached():
    rows = [
        row("a", [99.0, 99.6], 2.0, 8.0, seconds=10.0, predict_rate=100.0),
        row("b", [99.1, 99.7], 4.0, None, seconds=20.0, predict_rate=300.0),
    ]
    mean = mean_row(rows)
    assert mean["name"] == "mean of the 2 above (last epoch 99.60 to 99.70)"
    assert round(mean["accuracy"][0], 2) == 99.65
    assert (mean["to_99"], mean["to_995"], mean["seconds"]) == (3.0, None, 15.0)
    assert mean["predict_rate"] == 200.0
    assert "| not reached |" in table([mean])


def test_the_default_is_set_against_the_examples_network_where_both_reached_99():
    default = row("default (bncnn, 2 epochs)", [98.9, 99.4], 12.0)
    examples = row("pytorch/examples network, 5 epochs", [98.4, 99.0], 372.0)
    assert against_examples([default, examples]) == (
        "Time to 99.0%: the default model took 1/31 of the pytorch/examples network's."
    )
    assert against_examples([default, row(examples["name"], [98.4], None)]) == ""
    assert against_examples([default]) == ""


def test_best_runs_name_the_settings_they_add_to_the_preset():
    runs = best_runs(2, settings={"augment_views": "2"})
    assert runs[1] == (
        "best, augment_views=2: seed=2",
        {"preset": "best", "augment_views": "2", "seed": 2},
    )
    assert best_runs(1, members=3)[0][0] == "best, members=3: seed=1"
    assert best_runs(1)[0] == ("best: seed=1", {"preset": "best", "seed": 1})


def data_folder(channel, tmp_path):
    """A data folder whose training/ and testing/ are both ``channel``."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("training", "testing"):
        os.symlink(channel, data / name)
    return data


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_runs_side_by_side_each_train_on_a_cpu_of_their_own(tiny_channel, tmp_path):
    data = data_folder(tiny_channel, tmp_path)
    hp = {"epochs": 1, "hidden_channels": 4}
    runs = [("one", {**hp, "seed": 1}), ("two", {**hp, "seed": 2})]
    rows = bench_all(runs, str(data), str(tmp_path / "work"), jobs=2)
    assert [r["name"] for r in rows] == ["one", "two"]
    for row in rows:
        assert row["accuracy"][-1] > 50, row
        with open(os.path.join(os.path.dirname(row["model_dir"]), "train.log")) as f:
            assert "1 thread(s) each" in f.read()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_failed_run_side_by_side_stops_the_runs_not_yet_started(tiny_channel, tmp_path):
    data = data_folder(tiny_channel, tmp_path)
    hp = {"epochs": 3, "hidden_channels": 4}
    # The bad run fails on its hyperparameters while the other still trains; its CPU comes free.
    runs = [("bad", {**hp, "epochs": 0}), ("trains", hp), ("queued", hp)]
    with pytest.raises(SystemExit, match="bad failed"):
        bench_all(runs, str(data), str(tmp_path / "work"), jobs=2)
    assert sorted(os.listdir(tmp_path / "work")) == ["bad", "trains"]
