"""Soft solvent mask from the half-map average (stage 5)."""

from __future__ import annotations

import numpy as np

from spIsoNet.fourier import frequency_radius, irfft3, rfft3

__all__ = ["soft_mask"]


def soft_mask(
    volume: np.ndarray,
    voxel_size: float,
    lowpass: float = 15.0,
    threshold: float = 0.12,
    extend: float = 4.0,
    edge: float = 8.0,
) -> np.ndarray:
    """Soft solvent mask of a density map.

    Parameters
    ----------
    volume : np.ndarray
        float [n, n, n] map (e.g. the average of the half-maps).
    voxel_size : float
        Å per voxel.
    lowpass : float
        Gaussian low-pass, Å (σ in Fourier chosen so the filter is 0.5 at 1/lowpass).
    threshold : float
        Binarisation level as a fraction of the low-passed map's maximum.
    extend, edge : float
        Binary dilation and raised-cosine soft-edge widths, Å.

    Returns
    -------
    np.ndarray
        float32 [n, n, n] in [0, 1].
    """
    from scipy import ndimage

    n = volume.shape[0]
    s2 = frequency_radius(n) ** 2 / (n * voxel_size) ** 2
    gauss = np.exp(-np.log(2.0) * s2 * lowpass**2).astype(np.float32)
    smooth = irfft3(rfft3(volume) * gauss, n)
    binary = smooth > threshold * smooth.max()
    distance = ndimage.distance_transform_edt(~binary) * voxel_size  # Å from the binary region
    ramp = np.clip((distance - extend) / max(edge, 1e-6), 0.0, 1.0)
    mask = 0.5 * (1.0 + np.cos(np.pi * ramp))
    return mask.astype(np.float32)
