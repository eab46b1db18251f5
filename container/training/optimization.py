"""The optimizer, its learning-rate schedule, the weights' moving average, mixed precision and
augmentation."""

import copy
import itertools

import torch
from torch import nn
from torch.nn import functional as F


def make_optimizer(config, params):
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.momentum > 0 and config.schedule == "onecycle",
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adadelta(params, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(config, optimizer, steps_per_epoch):
    """Stepped once per batch."""
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.lr,
            total_steps=config.epochs * steps_per_epoch,
            pct_start=0.25,
            cycle_momentum=config.optimizer == "sgd" and config.momentum > 0,
        )
    if config.schedule == "step":  # gamma once per epoch, as pytorch/examples does
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: config.gamma ** (step // steps_per_epoch)
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


class MovingAverage(nn.Module):
    """An exponential moving average of a net's weights and batch-norm statistics, with the decay
    warmed up as (1 + n) / (10 + n) so that the random initial weights fade out within the first
    epoch; batch norm's counters are copied. The warm-up reaches 0.999 only after 8,990 steps
    (19 of the `best` preset's 20 epochs): until then the average spans the last ninth or so of
    the steps taken. Its state dict has the layout of torch's AveragedModel (``n_averaged``,
    ``module.*``), which older checkpoints hold.

    The step count is kept in Python, and written into ``n_averaged`` only for a state dict:
    AveragedModel reads its count tensor back at every step, which on a GPU waits for all the
    work queued before it."""

    def __init__(self, net, decay):
        super().__init__()
        self.module = copy.deepcopy(net)
        device = next(net.parameters()).device
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long, device=device))
        self.decay, self.steps = decay, 0

    @torch.no_grad()
    def update_parameters(self, net):
        pairs = zip(
            itertools.chain(self.module.parameters(), self.module.buffers()),
            itertools.chain(net.parameters(), net.buffers()),
        )
        floats, counters = ([], []), ([], [])
        for averaged, current in pairs:
            kept = floats if averaged.is_floating_point() else counters
            kept[0].append(averaged)
            kept[1].append(current.detach())
        if self.steps == 0:
            torch._foreach_copy_(*floats)
        else:
            n = self.steps
            torch._foreach_lerp_(*floats, 1 - min(self.decay, (1 + n) / (10 + n)))
        if counters[0]:
            torch._foreach_copy_(*counters)
        self.steps += 1

    def state_dict(self, *args, **kwargs):
        self.n_averaged.fill_(self.steps)  # the count, as AveragedModel's checkpoints hold it
        return super().state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        result = super().load_state_dict(state_dict, strict, assign)
        self.steps = int(self.n_averaged)  # once, on resuming
        return result


def amp_dtype(device, amp):
    if device.type != "cuda" or not amp:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device, amp):
    dtype = amp_dtype(device, amp)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def augment(x, max_degrees=10.0, max_shift=0.1, max_scale=0.1, elastic=0.0):
    """Each image its own random rotation, shift (fraction of the side) and scale; with
    ``elastic``, also a smooth random displacement of about that many pixels at most, drawn on
    a 4x4 grid and interpolated across the image (elastic distortion, Simard et al. 2003)."""
    n, side = x.shape[0], x.shape[-1]
    rand = torch.rand(n, 4, device=x.device) * 2 - 1
    angle = rand[:, 0] * max_degrees * torch.pi / 180
    scale = 1 + rand[:, 1] * max_scale
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, rand[:, 2] * max_shift * 2], 1),
            torch.stack([sin, cos, rand[:, 3] * max_shift * 2], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if elastic:
        coarse = (torch.rand(n, 2, 4, 4, device=x.device) * 2 - 1) * (elastic * 2 / side)
        field = F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
