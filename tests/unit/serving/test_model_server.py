"""The model server's configuration from the SAGEMAKER_* settings."""

from container.serving.model_server import execution_parameters, response_limit
from container.serving.parameters import MAX_ANSWER_BYTES_PER_IMAGE, MAX_NPZ_ARRAY_BYTES


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
