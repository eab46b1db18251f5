"""The training benchmark's summary rows and sentences, from rows as `bench` returns them."""

from benchmarks.bench_train import against_examples, mean_row, table


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
