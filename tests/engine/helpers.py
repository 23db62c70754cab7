"""Tiny inputs shared by the engine tests (maps of 32³, width-4 networks)."""

from __future__ import annotations

import numpy as np
import torch

from spIsoNet.engine import EngineSettings
from spIsoNet.engine.unet import UNetConfig

TINY = UNetConfig(width=4, depth=1, n_conv=1)


def smooth_volume(n: int, seed: int, sigma: float = 1.5) -> np.ndarray:
    """Random smooth float32 volume (Gaussian-filtered noise), z-scored."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    v = ndimage.gaussian_filter(rng.standard_normal((n, n, n)), sigma)
    return ((v - v.mean()) / v.std()).astype(np.float32)


def randomise(net: torch.nn.Module, seed: int, scale: float = 0.3) -> torch.nn.Module:
    """Give every parameter (including the zero-initialised head) random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return net


def tiny_case(n=32, seed=0):
    truth = smooth_volume(n, seed, sigma=2.0)
    rng = np.random.default_rng(seed + 10)
    h1 = truth + 0.5 * rng.standard_normal(truth.shape).astype(np.float32)
    h2 = truth + 0.5 * rng.standard_normal(truth.shape).astype(np.float32)
    k = np.arange(n) - n // 2
    fsc = np.exp(-(k[:, None, None] ** 2) / 20.0) * np.ones((1, n, n))  # weak along z
    return h1, h2, fsc.astype(np.float32)


def tiny_settings(**kw):
    base = dict(
        epochs=1,
        n_subvolume=8,
        cube_size=16,
        predict_crop_size=16,
        batch_size=4,
        acc_batches=1,
        net_width=4,
        net_depth=1,
        n_conv=1,
        seed=0,
        device="cpu",
        show_progress=False,
        ncpus=1,
    )
    base.update(kw)
    return EngineSettings(**base)
