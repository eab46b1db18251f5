"""The model server's configuration from the SAGEMAKER_* settings."""

import os
import re

import pytest

from container.serving import parameters
from container.serving.handler import report_load_failure
from container.serving.model_server import (
    execution_parameters,
    model_server_command,
    response_limit,
    server_properties,
)
from container.serving.parameters import (
    MAX_ANSWER_BYTES_PER_IMAGE,
    MAX_NPZ_ARRAY_BYTES,
    ServerSettings,
)


def test_the_server_may_send_the_answer_for_the_most_images_a_request_holds():
    most_in_npz = MAX_NPZ_ARRAY_BYTES // 784
    assert response_limit(6) >= most_in_npz * MAX_ANSWER_BYTES_PER_IMAGE
    assert response_limit(1000) >= 1000 * 2**20 // 784 * MAX_ANSWER_BYTES_PER_IMAGE
    assert response_limit(10**6) == 2**31 - 1  # the most the server's setting holds


def test_batch_transform_is_told_to_keep_every_worker_busy_within_the_payload_limit():
    assert execution_parameters(2, 6.0) == {"MaxConcurrentTransforms": 2, "MaxPayloadInMB": 6}
    assert execution_parameters(4, 2.5) == {"MaxConcurrentTransforms": 4, "MaxPayloadInMB": 2}
    assert execution_parameters(8, 500) == {"MaxConcurrentTransforms": 8, "MaxPayloadInMB": 100}
    # The API takes whole megabytes from 1: a smaller limit leaves the job's own setting.
    assert execution_parameters(1, 0.5) == {"MaxConcurrentTransforms": 1}


def test_multi_model_mode_starts_with_no_model_and_one_listener_for_both_apis():
    settings = ServerSettings.from_environ({"SAGEMAKER_MULTI_MODEL": "true"})
    assert settings.multi_model and settings.workers == 1  # many models share the cores
    properties = server_properties(settings)
    assert "load_models" not in properties
    assert properties["management_address"] == properties["inference_address"]
    assert "--models" not in model_server_command("mms.properties")
    single = server_properties(ServerSettings.from_environ({}))
    assert single["load_models"] == "ALL"
    assert single["management_address"] == "http://127.0.0.1:8081"  # loopback, never exposed
    assert model_server_command("mms.properties", "/opt/ml/model")[-2:] == [
        "--models",
        "model=/opt/ml/model",
    ]
    many = ServerSettings.from_environ(
        {"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_MODEL_SERVER_WORKERS": "3"}
    )
    assert many.workers == 3


def test_one_worker_a_gpu_where_there_are_gpus_else_one_a_core(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(parameters, "gpu_count", lambda: 0)
    assert ServerSettings.from_environ({}).workers == cores
    monkeypatch.setattr(parameters, "gpu_count", lambda: 2)
    assert ServerSettings.from_environ({}).workers == 2
    assert ServerSettings.from_environ({"SAGEMAKER_MODEL_SERVER_WORKERS": "4"}).workers == 4


def test_a_load_failure_is_left_for_serve_or_for_the_load_request(tmp_path):
    single = ServerSettings(load_failure_file=str(tmp_path / "failure"))
    report_load_failure(single, "model", ValueError("no weights"))
    assert (tmp_path / "failure").read_text() == "ValueError: no weights"
    many = ServerSettings(multi_model=True, load_failure_dir=str(tmp_path))
    report_load_failure(many, "w2", MemoryError("cannot allocate"))
    assert (tmp_path / "w2").read_text() == "507 MemoryError: cannot allocate"
    report_load_failure(many, "w5", OSError("gone"))
    assert (tmp_path / "w5").read_text().startswith("500 OSError: gone")


def test_the_timeout_is_seconds_for_the_handler_and_whole_minutes_above_it_for_the_server():
    """multi-model-server reads its response timeout in minutes: it gets the setting rounded up,
    plus one, and stays a backstop behind the handler's own deadline in seconds."""
    for seconds, minutes in [(2, 2), (60, 2), (61, 3), (3600, 61)]:
        settings = ServerSettings.from_environ({"SAGEMAKER_MODEL_SERVER_TIMEOUT": str(seconds)})
        assert settings.timeout_s == seconds
        assert server_properties(settings)["default_response_timeout"] == minutes


@pytest.mark.parametrize(
    "name, value",
    [
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "60s"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "0"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "two"),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "-1"),
        ("SAGEMAKER_BIND_TO_PORT", "80.5"),
        ("SAGEMAKER_RESTART_UNHEALTHY_AFTER_S", "soon"),
    ],
)
def test_a_setting_that_is_not_a_positive_number_is_refused_by_name(name, value):
    with pytest.raises(ValueError, match=f"{name} must be .* above 0, not '{re.escape(value)}'"):
        ServerSettings.from_environ({name: value})
