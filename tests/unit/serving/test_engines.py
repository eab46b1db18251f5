"""The engines: ONNX Runtime on the CPU, torch where it cannot run the net."""

import subprocess
import sys

import numpy as np
import torch

from container.serving.engines import OnnxEngine, TorchEngine, load_net
from container.serving.hooks import model_fn, predict_fn
from model.networks import build_model, make_config
from tests.helpers import tiny_model_dir


def test_on_the_cpu_onnx_runtime_gives_torchs_answers(tmp_path):
    model_dir = tiny_model_dir(tmp_path)
    model = model_fn(model_dir, "cpu")
    assert isinstance(model, OnnxEngine)
    on_torch = TorchEngine(load_net(model_dir), model.device)
    x = np.random.default_rng(1).random((300, 1, 28, 28), dtype=np.float32)
    was = torch.get_num_threads()
    try:
        for size in (1, 3, 300):  # one session per thread count
            for threads in (1, 2):
                torch.set_num_threads(threads)
                expected = predict_fn(x[:size], on_torch)
                assert np.allclose(predict_fn(x[:size], model), expected, atol=1e-6)
    finally:
        torch.set_num_threads(was)
    assert sorted(model._sessions) == [1, 2]


# The server's load and fork, in a process of its own: torch's OpenMP threads, which other tests
# start in this one, do not survive a fork either. The parent loads on one thread, as the
# handler does, then makes a session with a thread of its own.
FORKED_WORKER = """
import os, sys
import numpy as np, torch
from container.serving.hooks import model_fn, predict_fn
torch.set_num_threads(1)
model = model_fn(sys.argv[1], "cpu")
x = np.random.default_rng(2).random((100, 1, 28, 28), dtype=np.float32)
expected = predict_fn(x, model)
model.session(2).run(None, {"pixels": x})
for threads in (1, 2):
    pid = os.fork()
    if pid == 0:
        torch.set_num_threads(threads)
        os._exit(0 if np.allclose(predict_fn(x, model), expected, atol=1e-6) else 3)
    assert os.waitpid(pid, 0)[1] == 0, f"the worker on {threads} threads answered wrong"
print(sorted(model._sessions))
"""


def test_a_forked_worker_runs_on_sessions_of_its_own(tmp_path):
    """The server forks its workers after loading: the sessions made before the fork, whose
    threads stay behind, are neither used nor freed in a worker, which makes its own."""
    done = subprocess.run(
        [sys.executable, "-c", FORKED_WORKER, tiny_model_dir(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "[1, 2]"


class WithAnOpOnnxLacks(torch.nn.Module):
    """A net whose logits are multiplied by erfcx(0 x) = 1: ONNX has no operator for erfcx."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x) * torch.special.erfcx(0 * x.sum())


def test_a_net_onnx_runtime_cannot_run_is_served_by_torch(tmp_path, caplog):
    net = build_model(make_config("bncnn", hidden_channels=4)).eval()
    torch.jit.script(WithAnOpOnnxLacks(net)).save(str(tmp_path / "model.pt"))
    model = model_fn(str(tmp_path), "cpu")
    assert isinstance(model, TorchEngine)
    assert "the model runs on torch" in caplog.text and "erfcx" in caplog.text
    x = np.random.default_rng(3).random((5, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
    assert np.allclose(predict_fn(x, model), expected, atol=1e-6)
