"""The digit classifiers and the config that rebuilds them: pure PyTorch, no I/O.

A checkpoint stores ``asdict(config)`` beside the weights, so a loader calls
``build_model(NetConfig(**checkpoint["config"]))`` and repeats no constant.
"""

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

IMAGE_SIZE = 28  # MNIST images are 28x28, one channel
NUM_CLASSES = 10
# Pixel statistics of the MNIST training set, on the 0-1 scale.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


@dataclass(frozen=True)
class NetConfig:
    arch: str = "bncnn"
    hidden_channels: int = 16  # width of the first convolution; later ones are multiples of it
    kernel_size: int = 3
    dropout: float = 0.0
    members: int = 1  # nets of this config whose probabilities are averaged
    shift_views: bool = False  # at inference, also the images shifted by a pixel each way
    depth: int = 1  # bncnn: convolutions a stage (each past the first: conv, norm, ReLU)
    stem: str = "strided"  # bncnn: "strided" (5x5, stride 2) or "full" (a 3x3 at 28x28 first)
    image_size: int = IMAGE_SIZE
    num_classes: int = NUM_CLASSES
    extra: dict = field(default_factory=dict)  # room for keys a newer version adds

    def __post_init__(self):
        problems = config_problems(self)
        if problems:
            raise ValueError("; ".join(problems))


# The architecture's own defaults, applied where a hyperparameter is not given.
ARCH_DEFAULTS = {
    # Batch-normed 3x3 CNN: the default, built for accuracy per second of CPU training.
    "bncnn": dict(hidden_channels=16, kernel_size=3, dropout=0.0),
    # The original project's CNN; 32/5/0.2 are the settings its published table used.
    "baseline": dict(hidden_channels=32, kernel_size=5, dropout=0.2),
    # pytorch/examples mnist/main.py (conv 32->64, fc 9216->128->10), for comparison.
    "examples": dict(hidden_channels=32, kernel_size=3, dropout=0.25),
}
ARCHES = tuple(ARCH_DEFAULTS)
STEMS = ("strided", "full")
# Settings of the bncnn model alone (config_problems refuses them for the others).
BNCNN_ONLY = ("depth", "stem")


def make_config(arch="bncnn", **overrides):
    """The config of ``arch`` with its defaults where ``overrides`` holds None or nothing."""
    if arch not in ARCH_DEFAULTS:
        raise ValueError(f"model {arch!r} is not one of {', '.join(ARCHES)}")
    values = dict(ARCH_DEFAULTS[arch])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return NetConfig(arch=arch, **values)


def _baseline_feature_size(image_size, kernel_size):
    size = image_size
    for _ in range(2):  # conv (valid padding), then 2x2 max-pool
        size = (size - kernel_size + 1) // 2
    return size


def config_problems(config):
    """Every reason ``config`` cannot build a network, as readable sentences."""
    problems = []
    if config.arch not in ARCH_DEFAULTS:
        problems.append(f"model {config.arch!r} is not one of {', '.join(ARCHES)}")
        return problems
    if not 1 <= config.hidden_channels <= 1024:
        problems.append(f"hidden_channels must be between 1 and 1024, not {config.hidden_channels}")
    if not 1 <= config.members <= 16:
        problems.append(f"members must be between 1 and 16, not {config.members}")
    if not 1 <= config.depth <= 4:
        problems.append(f"depth must be between 1 and 4, not {config.depth}")
    elif config.depth > 1 and config.arch != "bncnn":
        problems.append(f"depth applies to the bncnn model alone, not {config.arch}")
    if config.stem not in STEMS:
        problems.append(f"stem must be one of {', '.join(STEMS)}, not {config.stem!r}")
    elif config.stem != "strided" and config.arch != "bncnn":
        problems.append(f"stem applies to the bncnn model alone, not {config.arch}")
    if not 0.0 <= config.dropout < 1.0:
        problems.append(f"dropout must be at least 0 and below 1, not {config.dropout}")
    k = config.kernel_size
    if config.arch == "baseline":
        largest = max(
            s
            for s in range(1, config.image_size + 1)
            if _baseline_feature_size(config.image_size, s) >= 1
        )
        if not 1 <= k <= largest:
            problems.append(
                f"kernel_size {k} leaves no pixels for the baseline model: "
                f"use an integer from 1 to {largest}"
            )
    elif config.arch == "bncnn":
        if k not in (1, 3, 5, 7):
            problems.append(f"kernel_size for the bncnn model must be 1, 3, 5 or 7, not {k}")
    elif config.arch == "examples":
        largest = (config.image_size - 2) // 2 + 1
        if not 1 <= k <= largest:
            problems.append(
                f"kernel_size {k} leaves no pixels for the examples model: "
                f"use an integer from 1 to {largest}"
            )
    return problems


class Normalize(nn.Module):
    """Maps 0-1 pixels to the training set's zero mean and unit variance inside the net,
    so every caller (training, serving, TorchScript users) feeds the same 0-1 scale."""

    def __init__(self, mean=MNIST_MEAN, std=MNIST_STD):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x):
        return (x - self.mean) / self.std


class BaselineNet(nn.Module):
    """The original project's CNN, layer for layer."""

    def __init__(self, config):
        super().__init__()
        k, c = config.kernel_size, config.hidden_channels
        side = _baseline_feature_size(config.image_size, k)
        self.norm = Normalize()
        self.conv1 = nn.Conv2d(1, c, kernel_size=k)
        self.conv2 = nn.Conv2d(c, 20, kernel_size=k)
        self.conv2_drop = nn.Dropout2d(config.dropout)
        self.fc1 = nn.Linear(20 * side * side, 50)
        self.fc2 = nn.Linear(50, config.num_classes)
        self.dropout = config.dropout

    def forward(self, x):
        x = self.norm(x)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.fc2(x)


class ExamplesNet(nn.Module):
    """pytorch/examples mnist/main.py's network (hidden_channels=32 and kernel_size=3 there)."""

    def __init__(self, config):
        super().__init__()
        k, c = config.kernel_size, config.hidden_channels
        side = (config.image_size - 2 * (k - 1)) // 2
        self.norm = Normalize()
        self.conv1 = nn.Conv2d(1, c, k)
        self.conv2 = nn.Conv2d(c, 2 * c, k)
        self.dropout1 = nn.Dropout(config.dropout)
        self.fc1 = nn.Linear(2 * c * side * side, 128)
        self.dropout2 = nn.Dropout(2 * config.dropout)  # 0.25 and 0.5 in the original
        self.fc2 = nn.Linear(128, config.num_classes)

    def forward(self, x):
        x = F.relu(self.conv1(self.norm(x)))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return self.fc2(x)


def _conv_norm_relu(in_channels, out_channels, kernel_size):
    """A same-size convolution, batch norm (so no bias) and ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class BNCNN(nn.Module):
    """A stem to 14x14, then two stages of a convolution, an overlapping 3x3 max-pool of stride
    2 (14 to 7 to 4 pixels, no border row dropped), batch norm and ReLU, and a linear head.
    Widths c, 2c, 4c: about 34,000 weights at c=16. ``depth`` adds convolutions after each of
    the three, at their resolution. The stem is a 5x5 convolution of stride 2 ("strided"), or a
    3x3 convolution at the full 28x28 and then a 3x3 of stride 2 ("full").

    Built for accuracy per second of CPU training: with the strided stem no layer runs at the
    full 28x28, and pooling before batch norm leaves a quarter of the elements to normalize.
    The full stem keeps the thinnest strokes a layer longer, for accuracy per epoch."""

    def __init__(self, config):
        super().__init__()
        k, c = config.kernel_size, config.hidden_channels
        self.norm = Normalize()
        if config.stem == "full":
            stem = [*_conv_norm_relu(1, c, 3), nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False)]
        else:
            stem = [nn.Conv2d(1, c, 5, stride=2, padding=2, bias=False)]
        layers = [*stem, nn.BatchNorm2d(c), nn.ReLU(inplace=True), *self._more(c, config)]
        for width in (2 * c, 4 * c):
            layers += [
                nn.Conv2d(width // 2, width, k, padding=k // 2, bias=False),
                nn.MaxPool2d(3, 2, 1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                *self._more(width, config),
            ]
        self.features = nn.Sequential(*layers)
        side = -(-config.image_size // 8)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(4 * c * side * side, config.num_classes)

    @staticmethod
    def _more(width, config):
        """The stage's convolutions after its first, at its own resolution and width."""
        return [
            layer
            for _ in range(config.depth - 1)
            for layer in _conv_norm_relu(width, width, config.kernel_size)
        ]

    def forward(self, x):
        x = torch.flatten(self.features(self.norm(x)), 1)
        return self.head(self.dropout(x))

    def for_inference(self):
        """An eval-mode copy with every batch norm folded into the convolution before it,
        where that is exact: a max-pool between them commutes with the norm's per-channel
        affine map only where its scale is positive, so a norm with any other scale stays."""
        net = copy.deepcopy(self).eval()
        folded = []
        for layer in net.features:
            if isinstance(layer, nn.BatchNorm2d):
                across_pool = isinstance(folded[-1], nn.MaxPool2d)
                conv_at = len(folded) - 1 - across_pool
                conv = _fold_batch_norm(folded[conv_at], layer, across_pool)
                if conv is not None:
                    folded[conv_at] = conv
                    continue
            folded.append(layer)
        net.features = nn.Sequential(*folded)
        return net


@torch.no_grad()
def _fold_batch_norm(conv, norm, across_pool):
    """``conv`` then eval-mode ``norm`` as one convolution, or None where that is not exact:
    across a max-pool, a scale that is not positive."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    if not isinstance(conv, nn.Conv2d) or across_pool and not bool((scale > 0).all()):
        return None
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
    )
    fused.weight.copy_(conv.weight * scale[:, None, None, None])
    bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
    fused.bias.copy_((bias - norm.running_mean) * scale + norm.bias)
    return fused.eval()


class Ensemble(nn.Module):
    """Several nets of one config, each initialised on its own. Training gives each member
    its own logits, (members, N, 10), for a loss of its own; in eval mode the output is the log
    of the members' mean probabilities, so that its softmax is what the ensemble predicts."""

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        """``x``: (N, 1, H, W) for every member, or (members, N, 1, H, W), a batch for each."""
        logits = []
        for i, member in enumerate(self.members):
            logits.append(member(x[i] if x.dim() == 5 else x))
        stacked = torch.stack(logits)
        if self.training:
            return stacked
        return torch.logsumexp(F.log_softmax(stacked, dim=-1), dim=0) - math.log(len(logits))

    def for_inference(self):
        net = copy.deepcopy(self).eval()
        net.members = nn.ModuleList(
            m.for_inference() if hasattr(m, "for_inference") else m for m in net.members
        )
        return net


class ShiftViews(nn.Module):
    """Test-time augmentation: in eval mode, the log of the mean probabilities of each image and
    its four shifts by one pixel (zeros shifted in), the small moves a digit's centring makes;
    in training, the net alone. ``views`` images go through the net in one pass for each image."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        # (rows, columns) moved: none, right, left, down, up. Attributes, which TorchScript keeps.
        self.shifts = [(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0)]
        self.views = len(self.shifts)

    def forward(self, x):
        if self.training:
            return self.net(x)
        h, w = x.shape[-2], x.shape[-1]
        p = F.pad(x, (1, 1, 1, 1))
        views = torch.cat(
            [p[..., 1 - dy : h + 1 - dy, 1 - dx : w + 1 - dx] for dy, dx in self.shifts]
        )
        log_probs = F.log_softmax(self.net(views), dim=-1)
        stacked = log_probs.reshape(self.views, -1, log_probs.shape[-1])
        return torch.logsumexp(stacked, dim=0) - math.log(self.views)

    def for_inference(self):
        net = copy.deepcopy(self).eval()
        if hasattr(net.net, "for_inference"):
            net.net = net.net.for_inference()
        return net


NETWORKS = {"bncnn": BNCNN, "baseline": BaselineNet, "examples": ExamplesNet}


def build_model(config):
    """The untrained network that ``config`` describes; it maps (N, 1, 28, 28) pixels in 0-1
    to (N, 10) logits (in training, an ensemble's (members, N, 10))."""
    if config.members > 1:
        net = Ensemble([NETWORKS[config.arch](config) for _ in range(config.members)])
    else:
        net = NETWORKS[config.arch](config)
    return ShiftViews(net) if config.shift_views else net
