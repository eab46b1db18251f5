"""Training-time augmentation (affine and elastic, each image its own) and the weights' moving
average."""

import torch
from torch.optim.swa_utils import AveragedModel

from container.training.optimization import MovingAverage, augment
from model.networks import build_model, make_config


def digit_batch(n):
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # a stroke, as a "1"
    return x


def test_no_range_and_no_elastic_leaves_images_as_they_are():
    x = digit_batch(4)
    same = augment(x, max_degrees=0.0, max_shift=0.0, max_scale=0.0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)


def test_elastic_bends_each_image_its_own_way_and_keeps_the_stroke():
    x = digit_batch(2)
    torch.manual_seed(0)
    bent = augment(x, max_degrees=0.0, max_shift=0.0, max_scale=0.0, elastic=2.0)
    assert not torch.allclose(bent[0], bent[1])  # a field for each image
    moved = (bent - x).abs().amax(dim=(1, 2, 3))
    assert (moved > 0.3).all()  # pixels moved
    ink = bent.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))
    assert ((ink > 0.7) & (ink < 1.3)).all(), ink  # a displacement of pixels, not a new image
    torch.manual_seed(0)
    assert torch.equal(augment(x, 0.0, 0.0, 0.0, elastic=2.0), bent)  # seeded: resumes repeat


def train_steps(net, steps, after_step):
    """``steps`` SGD steps on random images, calling ``after_step(net)`` after each; the net's
    state after each step."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    states = []
    for _ in range(steps):
        loss = net(torch.rand(8, 1, 28, 28)).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        after_step(net)
        states.append({k: v.clone() for k, v in net.state_dict().items()})
    return states


def test_moving_average_warms_up_then_decays_and_resumes_from_its_state_dict():
    torch.manual_seed(0)
    net = build_model(make_config("bncnn", hidden_channels=4))
    average = MovingAverage(net, decay=0.5)
    states = train_steps(net, 4, average.update_parameters)
    # By hand: the first step's weights, then a lerp by 1 - min(decay, (1 + n) / (10 + n)).
    expected = dict(states[0])
    for n, state in enumerate(states[1:], start=1):
        weight = 1 - min(0.5, (1 + n) / (10 + n))
        for key, value in state.items():
            if value.is_floating_point():
                expected[key] = expected[key] + (value - expected[key]) * weight
            else:
                expected[key] = value  # batch norm's counters: the latest
    averaged = average.module.state_dict()
    assert not torch.equal(averaged["head.weight"], states[-1]["head.weight"])
    for key, value in averaged.items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6)

    # A checkpoint's state dict, in torch's AveragedModel layout, resumes the step count.
    saved = average.state_dict()
    assert set(saved) == set(AveragedModel(net, use_buffers=True).state_dict())
    resumed = MovingAverage(build_model(make_config("bncnn", hidden_channels=4)), decay=0.5)
    resumed.load_state_dict(saved)
    assert resumed.steps == average.steps == 4 and int(resumed.n_averaged) == 4


def test_moving_average_of_a_net_without_buffers():
    net = build_model(make_config("baseline"))
    average = MovingAverage(net, decay=0.9)
    states = train_steps(net, 2, average.update_parameters)
    assert average.steps == 2
    weight = 9 / 11
    expected = (
        states[0]["fc2.weight"] + (states[1]["fc2.weight"] - states[0]["fc2.weight"]) * weight
    )
    torch.testing.assert_close(average.module.fc2.weight, expected)
