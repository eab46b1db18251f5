"""The optimizer, its learning-rate schedule, mixed precision and augmentation."""

import torch
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
