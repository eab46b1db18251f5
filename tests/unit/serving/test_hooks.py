"""The hooks in-process: the model folder's files, and passes through the net."""

from dataclasses import asdict

import numpy as np
import pytest
import torch

from container.serving.hooks import MAX_PASS, model_fn, predict_fn
from model.networks import build_model, make_config
from tests.helpers import tiny_model_dir


def test_model_fn_prefers_the_state_dict_and_falls_back_to_torchscript(tmp_path):
    net = build_model(make_config("bncnn", hidden_channels=4)).eval()
    with pytest.raises(FileNotFoundError, match="neither model.pth nor model.pt"):
        model_fn(str(tmp_path))
    torch.jit.script(net).save(str(tmp_path / "model.pt"))
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    from_script = predict_fn(x, model_fn(str(tmp_path)))
    torch.save(
        {
            "format": 1,
            "config": asdict(make_config("bncnn", hidden_channels=4)),
            "state_dict": net.state_dict(),
        },
        tmp_path / "model.pth",
    )
    from_state = predict_fn(x, model_fn(str(tmp_path)))
    assert np.allclose(from_script, from_state, atol=1e-5)


class Passes:
    """A model that records how many images each pass through it holds."""

    def __init__(self, model):
        self.model, self.device, self.views, self.sizes = model, model.device, model.views, []

    def __call__(self, x):
        self.sizes.append(len(x))
        return self.model(x)


def test_a_large_batch_goes_through_the_net_in_passes(tmp_path):
    model = Passes(model_fn(tiny_model_dir(tmp_path)))
    x = np.random.default_rng(0).random((MAX_PASS + 904, 1, 28, 28), dtype=np.float32)
    probabilities = predict_fn(x, model)
    assert model.sizes == [MAX_PASS, 904]
    assert probabilities.shape == (len(x), 10)
    assert np.allclose(probabilities[-904:], predict_fn(x[-904:], model), atol=1e-6)


def test_a_model_of_shifted_views_takes_max_pass_images_through_its_net_at_a_time(tmp_path):
    model = Passes(model_fn(tiny_model_dir(tmp_path, shift_views=True)))
    assert model.views == 5
    x = np.random.default_rng(0).random((MAX_PASS, 1, 28, 28), dtype=np.float32)
    probabilities = predict_fn(x, model)
    assert model.sizes == [MAX_PASS // 5] * 5 + [MAX_PASS % (MAX_PASS // 5)]
    assert probabilities.shape == (len(x), 10)
    assert np.allclose(probabilities[:3], predict_fn(x[:3], model), atol=1e-6)


class Users(torch.nn.Module):
    """A user's own model, as a model_fn of theirs may return it: log-probabilities, and a
    dropout that only eval mode turns off."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(28 * 28, 10)
        )

    def forward(self, x):
        return torch.log_softmax(self.layers(x), dim=1)


@pytest.mark.parametrize("scripted", [False, True])
def test_predict_fn_runs_a_users_own_torch_module_in_eval_mode(scripted):
    torch.manual_seed(0)
    net = Users()
    model = torch.jit.script(net) if scripted else net
    x = np.random.default_rng(0).random((MAX_PASS + 3, 1, 28, 28), dtype=np.float32)
    probabilities = predict_fn(x, model)
    assert not model.training
    with torch.no_grad():
        expected = torch.softmax(net.eval().layers(torch.from_numpy(x)), dim=1).numpy()
    assert probabilities.shape == (len(x), 10)
    assert np.allclose(probabilities, expected, atol=1e-6)


def test_a_pass_of_the_default_net_keeps_every_activation_under_mallocs_mmap_ceiling():
    """Above 32 MB glibc's malloc maps fresh pages for every allocation, and a pass spends a
    third of its time faulting them in: MAX_PASS images of the default net stay below that."""
    net = build_model(make_config("bncnn")).for_inference()
    largest = []
    for layer in net.modules():
        if not list(layer.children()):
            layer.register_forward_hook(lambda _, __, out: largest.append(out.nelement()))
    with torch.no_grad():
        net(torch.zeros(1, 1, 28, 28))
    assert max(largest) * 4 * MAX_PASS <= 32 * 2**20
