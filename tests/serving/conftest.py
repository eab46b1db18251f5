"""A real multi-model-server (`python -m container serve`) on a model that training wrote."""

import os

import pytest

from local_test.opt_ml import make_opt_ml
from local_test.server import LocalServer
from tests.helpers import DATA_DIR, PAYLOAD_LIMIT_MB, run_training


@pytest.fixture(scope="session")
def trained_model_dir(mnist, tmp_path_factory):
    """A model trained for one quick epoch on the full training set (about 99% accurate)."""
    base = make_opt_ml(
        tmp_path_factory.mktemp("serving_opt_ml"),
        {"hidden_channels": 16, "batch_size": 128, "epochs": 1},
        {name: os.path.join(DATA_DIR, name) for name in ("training", "testing")},
    )
    code, log = run_training(base)
    assert code == 0, log
    return os.path.join(base, "model")


@pytest.fixture(scope="module")
def server(trained_model_dir, tmp_path_factory):
    srv = LocalServer.serve(
        trained_model_dir,
        tmp_path_factory.mktemp("server"),
        SAGEMAKER_MAX_PAYLOAD_IN_MB=str(PAYLOAD_LIMIT_MB),
    )
    try:
        # Every worker: tests compare the workers before and after.
        srv.wait_healthy(workers=srv.workers)
        yield srv
    finally:
        srv.close()
