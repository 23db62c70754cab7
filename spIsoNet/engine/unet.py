"""3D U-Net with a residual output: ``f(x) = x + head(features(x))``.

Layout (close to the published network, configurable width and depth)::

    first conv (1→w) → [ConvBlock(c_l, n_conv) → skip, strided 2³ conv (c_l→c_{l+1})] × depth
    → bottleneck ConvBlock(c_depth, 2)
    → [2³ transposed conv (c_{l+1}→c_l) → concat(skip) → ConvBlock(2c_l→c_l, n_conv)] × depth
    → head conv (w→1), added to the input

with channels ``c_l = min(w · 2^l, 5w)`` (``w = 64, depth = 3`` gives 64, 128, 256, 320 like the
published model) and ConvBlock = ``n_conv × (conv 3³ → norm → LeakyReLU(0.01))``.

Normalisation layer (``norm``):

``"group"`` (default): :class:`torch.nn.GroupNorm`. Chosen because its statistics are
computed per sample: (1) the result does not depend on how a batch is split, so gradient
accumulation of ``k × b`` cubes is *exactly* one batch of ``k·b`` cubes and DDP over ``g`` GPUs
is exactly one process with the combined batch, with no cross-GPU statistics traffic
(SyncBatchNorm needs an all-reduce per layer in every forward and backward pass, and PyTorch's
runs on GPUs only); (2) the per-GPU micro-batch of the published defaults is 1–2 cubes, too few
for stable batch statistics; (3) training and inference behave identically (no running
statistics that drift from the batch statistics). The cost: each prediction tile is normalised
with its own statistics, so a tile is not exactly a crop of a whole-volume pass; tiles overlap
and are blended smoothly to hide this.

``"batch"``: BatchNorm3d (converted to SyncBatchNorm under multi-GPU CUDA DDP), as published. At
inference it is a fixed per-channel affine map, so the network is local and tiling is exact when the
overlap covers the receptive field; statistics depend on the batch split.

``"none"``: no normalisation (convolutions get biases): local, batch-independent; trains well
with AdamW on z-scored inputs but somewhat slower to converge.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spIsoNet.engine.settings import NORMS


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of :class:`UNet3D` (stored in checkpoints as a plain dict)."""

    width: int = 64
    depth: int = 3
    n_conv: int = 3
    norm: str = "group"

    def as_dict(self) -> dict:
        """Plain dict, as stored in checkpoints."""
        return asdict(self)

    @property
    def multiple(self) -> int:
        """Input edges must be multiples of this (``2**depth``)."""
        return 2**self.depth


class _GroupNorm(nn.GroupNorm):
    """:class:`torch.nn.GroupNorm` (same parameters and results) with a faster CPU bfloat16 path.

    Under CPU autocast the channels-last bfloat16 activations make PyTorch's group-norm backward
    take half of a training step (width 16, docs/benchmarks.md); normalising a contiguous copy
    and converting back costs two copies and makes the whole step 1.7× faster.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.bfloat16:
            y = F.group_norm(x.contiguous(), self.num_groups, self.weight, self.bias, self.eps)
            return y.contiguous(memory_format=torch.channels_last_3d)
        return super().forward(x)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        return _GroupNorm(math.gcd(channels, 8), channels)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    return nn.Identity()


def _conv_block(c_in: int, c_out: int, n_conv: int, norm: str, kernel=3, stride=1, padding=1):
    layers: list[nn.Module] = []
    for i in range(n_conv):
        layers += [
            nn.Conv3d(
                c_in if i == 0 else c_out,
                c_out,
                kernel,
                stride=stride,
                padding=padding,
                bias=norm == "none",
            ),
            _norm(norm, c_out),
            nn.LeakyReLU(0.01, inplace=True),
        ]
    return nn.Sequential(*layers)


class UNet3D(nn.Module):
    """Residual 3D U-Net; input/output ``[b, 1, n, n, n]``, ``n`` a multiple of ``2**depth``.

    Parameters
    ----------
    config
        Width (base channels), depth (number of down-samplings), convolutions per block and the
        normalisation layer (see the module docstring for the choice).
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        cfg = config or UNetConfig()
        if cfg.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {cfg.norm!r}")
        if cfg.width < 1 or cfg.depth < 1 or cfg.n_conv < 1:
            raise ValueError(f"invalid U-Net configuration {cfg}")
        self.config = cfg
        chans = [min(cfg.width * 2**level, 5 * cfg.width) for level in range(cfg.depth + 1)]
        self.first = nn.Conv3d(1, chans[0], 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        for level in range(cfg.depth):
            self.encoders.append(_conv_block(chans[level], chans[level], cfg.n_conv, cfg.norm))
            self.downs.append(
                _conv_block(
                    chans[level], chans[level + 1], 1, cfg.norm, kernel=2, stride=2, padding=0
                )
            )
        self.bottleneck = _conv_block(chans[-1], chans[-1], 2, cfg.norm)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(cfg.depth)):
            self.ups.append(
                nn.Sequential(
                    nn.ConvTranspose3d(chans[level + 1], chans[level], 2, stride=2),
                    nn.LeakyReLU(0.01, inplace=True),
                )
            )
            self.decoders.append(_conv_block(2 * chans[level], chans[level], cfg.n_conv, cfg.norm))
        self.head = nn.Conv3d(chans[0], 1, 3, padding=1)
        # Start as the identity map (residual output): training only adds what the losses ask for.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # Channels-last ("NDHWC") activations: 2-4x faster 3D convolutions with oneDNN on CPU
        # (measured in benchmarks/bench_train.py) and the layout cuDNN prefers.
        self.to(memory_format=torch.channels_last_3d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual output ``x + head(features(x))``, same shape as ``x``."""
        h = self.first(x.contiguous(memory_format=torch.channels_last_3d))
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            h = encoder(h)
            skips.append(h)
            h = down(h)
        h = self.bottleneck(h)
        for up, decoder in zip(self.ups, self.decoders):
            h = decoder(torch.cat([skips.pop(), up(h)], dim=1))
        return x + self.head(h)


def receptive_radius(config: UNetConfig) -> int:
    """Upper bound (voxels) on how far an output voxel sees into the input (local norms only).

    Sum over the layers of each kernel's reach times the sampling step of its level.
    """
    radius = 2  # first conv + head
    for level in range(config.depth):
        step = 2**level
        radius += 2 * config.n_conv * step  # encoder + decoder 3³ convs
        radius += 2 * step  # strided 2³ conv down + transposed conv up
    radius += 2 * 2**config.depth  # bottleneck (2 convs)
    return radius
