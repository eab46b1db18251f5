from dataclasses import asdict

import pytest
import torch

from model.networks import ARCHES, NetConfig, build_model, make_config


@pytest.mark.parametrize("arch", ARCHES)
def test_every_network_maps_images_to_ten_logits(arch):
    net = build_model(make_config(arch)).eval()
    assert net(torch.rand(5, 1, 28, 28)).shape == (5, 10)


def test_baseline_is_the_original_cnn():
    net = build_model(make_config("baseline"))
    assert (net.conv1.in_channels, net.conv1.out_channels, net.conv1.kernel_size) == (1, 32, (5, 5))
    assert (net.conv2.out_channels, net.fc1.in_features, net.fc1.out_features) == (20, 320, 50)
    assert isinstance(net.conv2_drop, torch.nn.Dropout2d) and net.conv2_drop.p == 0.2
    assert net.fc2.out_features == 10


def test_examples_net_matches_pytorch_examples():
    net = build_model(make_config("examples"))
    assert (net.conv1.out_channels, net.conv2.out_channels) == (32, 64)
    assert (net.fc1.in_features, net.fc1.out_features) == (9216, 128)


def test_config_rebuilds_the_same_network():
    config = make_config("bncnn", hidden_channels=8)
    net = build_model(config).eval()
    twin = build_model(NetConfig(**asdict(config))).eval()
    twin.load_state_dict(net.state_dict())
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(net(x), twin(x))


@pytest.mark.parametrize(
    "arch,kernel_size,allowed",
    [
        ("baseline", 10, "from 1 to 9"),
        ("examples", 15, "from 1 to 14"),
        ("bncnn", 4, "1, 3, 5 or 7"),
    ],
)
def test_kernel_size_that_leaves_no_pixels_is_refused(arch, kernel_size, allowed):
    with pytest.raises(ValueError, match=allowed):
        make_config(arch, kernel_size=kernel_size)


def test_largest_allowed_baseline_kernel_still_builds():
    net = build_model(make_config("baseline", kernel_size=9)).eval()
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_every_problem_is_listed():
    with pytest.raises(ValueError) as raised:
        make_config("baseline", dropout=1.5, hidden_channels=0)
    assert "dropout" in str(raised.value) and "hidden_channels" in str(raised.value)


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="bncnn, baseline, examples"):
        make_config("resnet")


def test_depth_adds_convolutions_to_each_bncnn_stage_and_keeps_depth_one_as_it_was():
    shallow = build_model(make_config("bncnn", hidden_channels=8))
    deep = build_model(make_config("bncnn", hidden_channels=8, depth=2))
    convs = [m for m in deep.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (1, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32)
    ]  # fmt: skip
    assert deep.eval()(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    # depth 1 is the net checkpoints from before depth existed hold: the same layers and names
    assert NetConfig(**{k: v for k, v in asdict(make_config()).items() if k != "depth"}).depth == 1
    assert [k for k in shallow.state_dict()][:6] == [
        "features.0.weight", "features.1.weight", "features.1.bias",
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
    ]  # fmt: skip
    assert "features.10.weight" not in shallow.state_dict()
    assert "features.7.weight" in shallow.state_dict()  # the last stage's convolution


def test_depth_is_for_the_bncnn_model():
    with pytest.raises(ValueError, match="depth applies to the bncnn model alone"):
        make_config("baseline", depth=2)
    with pytest.raises(ValueError, match="between 1 and 4"):
        make_config("bncnn", depth=5)


def test_the_full_stem_convolves_at_28x28_before_the_strided_convolution():
    net = build_model(make_config("bncnn", hidden_channels=8, stem="full"))
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs[:2]] == [
        (1, 8, (1, 1)), (8, 8, (2, 2))
    ]  # fmt: skip
    assert net.eval()(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    # "strided" is the net checkpoints from before stem existed hold
    assert NetConfig(**{k: v for k, v in asdict(make_config()).items() if k != "stem"}).stem == (
        "strided"
    )
    with pytest.raises(ValueError, match="stem must be one of strided, full, not 'wide'"):
        make_config("bncnn", stem="wide")
    with pytest.raises(ValueError, match="stem applies to the bncnn model alone"):
        make_config("examples", stem="full")


def _trained_looking_bncnn(depth=1, stem="strided"):
    """A bncnn with batch-norm statistics and affine weights away from their initial values."""
    torch.manual_seed(0)
    net = build_model(make_config("bncnn", hidden_channels=8, depth=depth, stem=stem))
    net.train()
    for _ in range(3):
        net(torch.rand(64, 1, 28, 28))
    with torch.no_grad():
        for layer in net.features:
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.uniform_(-0.5, 0.5)
    return net.eval()


@pytest.mark.parametrize("depth,stem", [(1, "strided"), (3, "strided"), (2, "full")])
def test_folding_batch_norm_for_inference_keeps_the_outputs(depth, stem):
    net = _trained_looking_bncnn(depth, stem)
    folded = net.for_inference()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(16, 1, 28, 28)
    torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # a copy


def test_a_batch_norm_with_a_negative_scale_is_not_folded_past_a_max_pool():
    net = _trained_looking_bncnn()
    with torch.no_grad():
        net.features[5].weight[0] = -1.0  # the norm after the second convolution and its pool
        net.features[1].weight[0] = -1.0  # the stem's norm, with no pool between: still folds
    folded = net.for_inference()
    norms = [m for m in folded.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 1 and norms[0].weight[0] == -1.0
    x = torch.rand(16, 1, 28, 28)
    torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-5)


def test_an_ensemble_predicts_its_members_mean_probabilities():
    torch.manual_seed(0)
    config = make_config("bncnn", hidden_channels=8, members=3)
    ensemble = build_model(config)
    first, second = (m.state_dict() for m in ensemble.members[:2])
    assert not torch.equal(first["head.weight"], second["head.weight"])  # each its own start
    x = torch.rand(6, 1, 28, 28)
    assert ensemble.train()(x).shape == (3, 6, 10)  # one set of logits a member for training
    views = torch.rand(3, 6, 1, 28, 28)  # or a batch of its own for each member
    own = torch.stack([m(v) for m, v in zip(ensemble.members, views, strict=True)])
    torch.testing.assert_close(ensemble(views), own)
    ensemble.eval()
    mean = torch.stack([m(x).softmax(1) for m in ensemble.members]).mean(0)
    torch.testing.assert_close(ensemble(x).softmax(1), mean)
    torch.testing.assert_close(ensemble.for_inference()(x), ensemble(x), rtol=1e-4, atol=1e-5)
    scripted = torch.jit.script(ensemble)  # what model.pt holds
    torch.testing.assert_close(scripted(x), ensemble(x))
    rebuilt = build_model(NetConfig(**asdict(config))).eval()
    rebuilt.load_state_dict(ensemble.state_dict())
    assert torch.equal(rebuilt(x), ensemble(x))
    with pytest.raises(ValueError, match="members must be between 1 and 16"):
        make_config("bncnn", members=0)


@pytest.mark.parametrize("members", [1, 2])
def test_shift_views_predict_the_mean_probabilities_of_the_image_and_its_shifts(members):
    torch.manual_seed(0)
    net = build_model(make_config("bncnn", hidden_channels=8, members=members, shift_views=True))
    inner = net.net
    x = torch.zeros(3, 1, 28, 28)
    x[:, :, 10:18, 12:16] = torch.rand(3, 1, 8, 4)
    assert torch.equal(net.train()(x), inner(x))  # training sees the images as given
    net.eval()
    # One pixel right, left, down, up; zeros come in at the edge.
    shifted = [x] + [torch.roll(x, step, dim) for dim in (3, 2) for step in (1, -1)]
    mean = torch.stack([inner(v).softmax(1) for v in shifted]).mean(0)
    torch.testing.assert_close(net(x).softmax(1), mean)
    torch.testing.assert_close(net.for_inference()(x), net(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.jit.script(net)(x), net(x))
    assert not make_config("bncnn").shift_views  # off unless asked for
