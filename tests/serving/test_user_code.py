"""The user's own inference code (code/inference.py in the model folder) on the real
multi-model-server: hooks that replace the image's, their errors, and start-up failures."""

import io
import json
import os
import shutil

import numpy as np
import pytest
import torch

from container.serving.pixels import to_batch
from local_test.server import LocalServer, npy
from tests.digits import draw_digit, encode

OUTPUT_FN = """
import json
from helper import NAME  # the code folder is on sys.path

def output_fn(prediction, accept):
    return json.dumps({"by": NAME, "digits": prediction.argmax(1).tolist(), "accept": accept}), \\
        "application/vnd.digits+json"
"""
TRANSFORM_FN = """
def model_fn(model_dir):
    return {"name": "echo"}

def transform_fn(model, body, content_type, accept, context):
    return f"{model['name']}:{content_type}:{len(body)}:{context is not None}", "text/plain"
"""
MODEL_FN_ALONE = """
import os
import torch
from torch import nn

class Net(nn.Module):  # a dropout that only eval mode turns off, and log-probabilities out
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(28 * 28, 10))

    def forward(self, x):
        return torch.log_softmax(self.layers(x), dim=1)

def model_fn(model_dir):
    net = Net()
    net.load_state_dict(torch.load(os.path.join(model_dir, "net.pt")))
    return net
"""
ERRORS = """
import numpy as np
from sagemaker_inference.errors import BaseInferenceToolkitError

def input_fn(body, content_type):
    if body == b"422":
        raise BaseInferenceToolkitError(422, "needs a digit", "needs a digit")
    if body == b"crash":
        raise ValueError("the user's own crash")
    return np.zeros((1, 1, 28, 28), np.float32)
"""


def model_with_code(tmp_path, model_dir, files):
    folder = tmp_path / "model"
    if model_dir:
        shutil.copytree(model_dir, folder)
    (folder / "code").mkdir(parents=True)
    for name, text in files.items():
        (folder / "code" / name).write_text(text)
    return str(folder)


def start(tmp_path, model_dir, **environ):
    srv = LocalServer.serve(
        model_dir, tmp_path / "server", **{"SAGEMAKER_PROGRAM": "inference.py", **environ}
    )
    return srv


def test_an_output_fn_alone_reshapes_the_answer_of_every_body_the_image_decodes(
    tmp_path, trained_model_dir, mnist
):
    model = model_with_code(
        tmp_path, trained_model_dir, {"inference.py": OUTPUT_FN, "helper.py": "NAME = 'user'\n"}
    )
    srv = start(tmp_path, model)
    try:
        srv.wait_healthy()
        x, y = mnist["x_test"][:4], mnist["y_test"][:4]
        png = encode(draw_digit(7), "PNG")
        for body, content_type, labels in (
            (json.dumps(x.tolist()).encode(), "application/json", list(y)),
            (npy(x), "application/x-npy", list(y)),
            (png, "image/png", [7]),
        ):
            status, headers, answer = srv.invoke(body, content_type)
            assert status == 200 and headers["content-type"] == "application/vnd.digits+json"
            assert json.loads(answer) == {
                "by": "user",
                "digits": labels,
                "accept": "application/json",
            }
        status, _, answer = srv.invoke(b"[1, 2", "application/json")  # the image's decoder
        assert status == 400 and "not valid JSON" in json.loads(answer)["error"]
    finally:
        srv.close()


def test_model_fn_and_transform_fn_serve_every_request_of_any_type(tmp_path):
    model = model_with_code(tmp_path, None, {"inference.py": TRANSFORM_FN})  # no model.pth at all
    srv = start(tmp_path, model)
    try:
        srv.wait_healthy()
        for content_type in ("text/plain", "application/octet-stream", "image/png"):
            status, headers, answer = srv.invoke(b"hello", content_type, accept="text/plain")
            assert status == 200 and headers["content-type"].startswith("text/plain")
            assert answer.decode() == f"echo:{content_type}:5:True"
    finally:
        srv.close()


def test_a_model_fn_alone_serves_a_users_torch_module_behind_the_image_hooks(tmp_path, mnist):
    torch.manual_seed(0)
    linear = torch.nn.Linear(28 * 28, 10)
    model = model_with_code(tmp_path, None, {"inference.py": MODEL_FN_ALONE})
    weights = {f"layers.2.{name}": value.detach() for name, value in linear.state_dict().items()}
    torch.save(weights, os.path.join(model, "net.pt"))
    x = mnist["x_test"][:4]
    with torch.no_grad():
        expected = torch.softmax(linear(torch.from_numpy(to_batch(x)).flatten(1)), dim=1).numpy()
    srv = start(tmp_path, model)
    try:
        srv.wait_healthy()
        for _ in range(2):  # the same answer each time: no dropout
            status, _, answer = srv.invoke(npy(x), "application/x-npy", accept="application/x-npy")
            assert status == 200
            assert np.allclose(np.load(io.BytesIO(answer)), expected, atol=1e-5)
    finally:
        srv.close()


def test_a_hooks_errors_are_json_with_their_status_and_the_worker_lives_on(
    tmp_path, trained_model_dir
):
    model = model_with_code(tmp_path, trained_model_dir, {"inference.py": ERRORS})
    srv = start(tmp_path, model, SAGEMAKER_MODEL_SERVER_WORKERS="1")
    try:
        srv.wait_healthy()
        status, headers, answer = srv.invoke(b"422", "text/plain")
        assert status == 422 and headers["content-type"] == "application/json"
        assert json.loads(answer)["error"] == "needs a digit"
        status, headers, answer = srv.invoke(b"crash", "text/plain")
        assert status == 500 and headers["content-type"] == "application/json"
        error = json.loads(answer)
        assert error["hook"] == "input_fn" and "ValueError: the user's own crash" in error["error"]
        status, _, answer = srv.invoke(b"ok", "text/plain")  # the same worker, still serving
        assert status == 200 and len(json.loads(answer)["predictions"]) == 1
        assert srv.ping()[0] == 200
    finally:
        srv.close()


@pytest.mark.parametrize(
    "files, reason",
    [
        (
            {"inference.py": "import not_a_module_anywhere\n"},
            "No module named 'not_a_module_anywhere'",
        ),
        (
            {
                "inference.py": "def transform_fn(m, b, c, a):\n    pass\n\ndef input_fn(b, c):\n    pass\n"
            },
            "defines transform_fn and also input_fn",
        ),
        (
            {"inference.py": "", "requirements.txt": "./missing-0.1-py3-none-any.whl\n"},
            "cannot install",
        ),
    ],
)
def test_user_code_that_cannot_load_stops_serve_with_the_reason(
    tmp_path, trained_model_dir, files, reason
):
    srv = start(tmp_path, model_with_code(tmp_path, trained_model_dir, files))
    try:
        assert srv.wait_exit() not in (None, 0), srv.output()
        assert reason in srv.output(), srv.output()
        assert 200 not in [status for _, status in srv.pings]
    finally:
        srv.close()


def test_a_program_with_no_file_leaves_the_image_hooks_serving(tmp_path, trained_model_dir, mnist):
    """The current SDK's ModelBuilder sets SAGEMAKER_PROGRAM whether or not the user wrote code."""
    srv = start(tmp_path, trained_model_dir)
    try:
        srv.wait_healthy()
        status, _, answer = srv.invoke(
            npy(mnist["x_test"][:3]), "application/x-npy", accept="application/x-npy"
        )
        assert status == 200 and np.load(io.BytesIO(answer)).shape == (3, 10)
        assert "SAGEMAKER_PROGRAM=inference.py names no file" in srv.output()
    finally:
        srv.close()
