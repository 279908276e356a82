"""Convolutional network: stages of conv → BN → activation, optional residual blocks, pooled head.

Stage s has `depth` (or `depth[s]`) convolutions of `channels[s]` filters (or the exact
per-conv counts in `widths`, which structured pruning writes). With `residual`, the
convolutions after a stage's first are paired into blocks with an identity shortcut. Where the
network downsamples is `downsample`: by default stages after the first start with a 2×2
max-pool while the feature map is at least 2×2; `pool_after_conv` pools inside every stage's
first layer (conv → pool → BN → activation), the order of the fast CIFAR-10 nets (airbench).
Images may add a frozen patch-whitening `stem` and a mirrored test-time view (`tta: flip`).
Inputs of shape (steps, features) get the same stages in 1-D (`models.temporal`).
"""

from __future__ import annotations

import torch
from torch import nn

from scaledl.config.models import CNNKnobs
from scaledl.models.registry import register_family

# Below this eigenvalue a direction of patch space is noise; the floor keeps 1/sqrt bounded.
WHITENING_EPS = 5e-4


def activation(name: str) -> nn.Module:
    return nn.GELU() if name == "gelu" else nn.ReLU(inplace=True)


def conv_bn_relu(
    cin: int,
    cout: int,
    k: int,
    bn: bool,
    relu: bool = True,
    dims: int = 2,
    act: str = "relu",
    pool: bool = False,
) -> nn.Sequential:
    """Conv (2-D on images, 1-D along the steps of a sequence) → [max-pool 2] → BN → activation.

    With `pool` the norm and activation run on the pooled map, a quarter of the conv's output
    (airbench's order, cheaper than pooling after the activation)."""
    conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d)
    layers: list[nn.Module] = [conv(cin, cout, k, padding=k // 2, bias=not bn)]
    if pool:
        layers.append(nn.MaxPool2d(2) if dims == 2 else nn.MaxPool1d(2))
    if bn:
        layers.append(norm(cout))
    if relu:
        layers.append(activation(act))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    def __init__(
        self, channels: int, mid: int, k: int, bn: bool, dims: int = 2, act: str = "relu"
    ) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(channels, mid, k, bn, dims=dims, act=act)
        self.conv2 = conv_bn_relu(mid, channels, k, bn, relu=False, dims=dims)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.conv1(x)))


def build_stages(knobs: CNNKnobs, cin: int, size: int, dims: int) -> tuple[nn.Sequential, int]:
    """The stages for `cin` input channels and a smallest spatial extent `size` (steps in 1-D);
    returns them with the channels they end on."""
    k, bn, act = knobs.kernel_size, knobs.batch_norm, knobs.activation
    pool_inside = knobs.downsample == "pool_after_conv"
    stages: list[nn.Module] = []
    for s, widths in enumerate(knobs.stage_widths()):
        layers: list[nn.Module] = []
        pool = size >= 2 and (pool_inside or s > 0)
        if pool and not pool_inside:
            layers.append(nn.MaxPool2d(2) if dims == 2 else nn.MaxPool1d(2))
        size = size // 2 if pool else size
        layers.append(conv_bn_relu(cin, widths[0], k, bn, dims=dims, act=act, pool=pool_inside))
        cin = widths[0]
        rest = widths[1:]
        if knobs.residual:
            while len(rest) >= 2:
                if rest[1] != cin:
                    raise ValueError("residual blocks must return the stage width")
                layers.append(ResidualBlock(cin, rest[0], k, bn, dims=dims, act=act))
                rest = rest[2:]
        for width in rest:
            layers.append(conv_bn_relu(cin, width, k, bn, dims=dims, act=act))
            cin = width
        stages.append(nn.Sequential(*layers))
    return nn.Sequential(*stages), cin


class PatchWhitening(nn.Conv2d):
    """A 2×2 conv whose filters whiten the training images' 2×2 patches (airbench's stem).

    Its filters are the eigenvectors of the patch covariance scaled by 1/sqrt(eigenvalue), each
    also negated (so a ReLU/GELU after it loses no sign), estimated from the training rows by
    `fit_to_data` (once: a model that loaded its filters keeps them) and then frozen; only the
    bias trains. Pruning leaves it alone (`prunable`): its outputs come in pairs and the next
    conv relies on all of them."""

    prunable = False
    fitted: torch.Tensor

    def __init__(self, cin: int) -> None:
        super().__init__(cin, 2 * cin * 4, kernel_size=2, padding=0, bias=True)
        self.weight.requires_grad_(False)
        # Saved with the weights: a model that loaded fitted filters (a fine-tune, a pruned or
        # slimmed student, a maintenance retrain) keeps them; eigenvectors fitted again on
        # other rows could come out with other signs and orders under the trained layers.
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit_to_data(self, x: torch.Tensor) -> None:
        if bool(self.fitted):
            return
        c = x.shape[1]
        patches = x.unfold(2, 2, 1).unfold(3, 2, 1)  # (N, C, H-1, W-1, 2, 2)
        flat = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4).double()
        covariance = flat.T @ flat / len(flat)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + WHITENING_EPS)[:, None]
        filters = filters.flip(0).reshape(c * 4, c, 2, 2)  # strongest direction first
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight.dtype))
        self.bias.zero_()  # type: ignore[union-attr]
        self.fitted.fill_(True)


class CNN(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, knobs: CNNKnobs) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"cnn needs image inputs (C, H, W); got sample shape {input_shape}")
        cin, h, w = input_shape
        self.stem: nn.Module = nn.Identity()
        if knobs.stem == "whiten":
            if min(h, w) < 2:
                raise ValueError(f"stem 'whiten' needs images of at least 2x2; got {h}x{w}")
            self.stem = nn.Sequential(PatchWhitening(cin), activation(knobs.activation))
            cin, h, w = 8 * cin, h - 1, w - 1
        self.stages, cin = build_stages(knobs, cin, min(h, w), dims=2)
        pool = nn.AdaptiveAvgPool2d(1) if knobs.global_pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.pool = nn.Sequential(pool, nn.Flatten())
        self.dropout = nn.Dropout(knobs.dropout) if knobs.dropout else nn.Identity()
        self.head = nn.Linear(cin, num_outputs)
        self.tta_flip = knobs.tta == "flip"

    def fit_to_data(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation from normalised training images (the whitening stem)."""
        for module in self.stem.modules():
            if isinstance(module, PatchWhitening):
                module.fit_to_data(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(self.stages(self.stem(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tta_flip and not self.training:
            # Test-time augmentation in the graph itself: every runtime serves the same answer.
            return 0.5 * (self.logits(x) + self.logits(torch.flip(x, dims=[3])))
        return self.logits(x)


@register_family("cnn", CNNKnobs)
def build_cnn(input_shape: tuple[int, ...], num_outputs: int, knobs: CNNKnobs) -> nn.Module:
    if len(input_shape) == 2:  # (steps, features): a spectrogram's frames, a sequence
        from scaledl.models.temporal import TemporalCNN

        return TemporalCNN(input_shape, num_outputs, knobs)
    return CNN(input_shape, num_outputs, knobs)
