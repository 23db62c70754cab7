"""The Fourier weight M of the losses: the FSC3D brought to the training-cube size.

The FSC3D volume (``[n, n, n]``, zero frequency at index ``n // 2`` on every axis) describes, per
spatial frequency, how well the map is determined. The losses need it on the cube grid
(``[c, c, c]``): cube frequency index ``q`` (cycles per ``c`` voxels) is the same physical frequency
as map index ``k = q · n / c``, so M is sampled at exactly those points (trilinear), which keeps the
zero frequency exactly at the centre (unlike a pixel-centre image resize, which shifts it).

``P_M(v) = Re IFFT(M · FFT(v))`` for real ``v`` equals ``IFFT(M_s · FFT(v))`` with the
Friedel-symmetrised ``M_s(k) = (M(k) + M(−k)) / 2``; M_s is therefore stored in ``rfft`` layout
and applied with real FFTs over a whole batch at once.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

__all__ = ["apply_weight", "cube_weight", "reference_sphere", "weight_to_rfft"]


def cube_weight(fsc3d: np.ndarray, cube_size: int, grid_size: int | None = None) -> np.ndarray:
    """Resample a centred FSC3D volume to the cube grid, in physical-frequency units.

    Parameters
    ----------
    fsc3d
        float array ``[n, n, n]``, zero frequency at index ``n // 2``.
    cube_size
        Cube edge ``c`` in voxels.
    grid_size
        Edge ``m`` of the map the cubes are cut from, when that map is the ``n``³ map resampled
        to ``m``³ voxels over the same field of view (a Fourier-cropped working grid, voxels
        ``n / m`` times larger): cube index ``q`` is then map index ``q · m / c``. Default ``n``.

    Returns
    -------
    numpy.ndarray
        float32 ``[c, c, c]`` in ``[0, 1]``; zero frequency at index ``c // 2``, exactly 1.
        Negative correlations are clipped to 0 (no information).
    """
    volume = np.asarray(fsc3d, dtype=np.float64)
    n = volume.shape[0]
    factor = (n if grid_size is None else grid_size) / cube_size
    if factor >= 2.0:
        # Anti-aliasing before subsampling: an odd-sized box average is symmetric about every
        # voxel, so the zero frequency stays in place.
        size = int(round(factor)) | 1
        volume = ndimage.uniform_filter(volume, size=size, mode="nearest")
    q = np.arange(cube_size, dtype=np.float64) - cube_size // 2
    k = q * factor + n // 2
    grid = np.meshgrid(k, k, k, indexing="ij")
    sampled = ndimage.map_coordinates(volume, grid, order=1, mode="nearest")
    sampled = np.clip(sampled, 0.0, 1.0).astype(np.float32)
    centre = cube_size // 2
    sampled[centre, centre, centre] = 1.0
    return sampled


def reference_sphere(cube_size: int, voxel_size: float, resolution: float) -> np.ndarray:
    """Centred ``[c, c, c]`` float32 indicator of frequencies below ``1/resolution`` (Å⁻¹)."""
    q = np.arange(cube_size, dtype=np.float32) - cube_size // 2
    radius2 = q[:, None, None] ** 2 + q[None, :, None] ** 2 + q[None, None, :] ** 2
    limit = cube_size * voxel_size / resolution  # in cube Fourier pixels
    return (radius2 < limit**2).astype(np.float32)


def weight_to_rfft(weight: np.ndarray) -> np.ndarray:
    """Centred weight ``[c, c, c]`` → Friedel-symmetrised ``rfft``-layout ``[c, c, c//2+1]``."""
    fft_layout = np.fft.ifftshift(np.asarray(weight, dtype=np.float64))
    c = fft_layout.shape[0]
    neg = (-np.arange(c)) % c
    mirrored = fft_layout[np.ix_(neg, neg, neg)]
    symmetric = 0.5 * (fft_layout + mirrored)
    return np.ascontiguousarray(symmetric[:, :, : c // 2 + 1], dtype=np.float32)


def apply_weight(volumes: torch.Tensor, weight_rfft: torch.Tensor) -> torch.Tensor:
    """``P_M(v) = Re IFFT(M · FFT(v))`` over the last three axes of a batch.

    Parameters
    ----------
    volumes
        Real tensor ``[..., c, c, c]`` (any leading batch/channel dims).
    weight_rfft
        ``[c, c, c//2+1]`` from :func:`weight_to_rfft`, on the same device.

    Returns
    -------
    torch.Tensor
        float32 tensor of the input shape. Computed in float32 even under autocast (half-precision
        FFTs are restricted to power-of-two sizes and lose accuracy).
    """
    c = volumes.shape[-1]
    with torch.autocast(device_type=volumes.device.type, enabled=False):
        spectrum = torch.fft.rfftn(volumes.float(), dim=(-3, -2, -1))
        return torch.fft.irfftn(spectrum * weight_rfft, s=(c, c, c), dim=(-3, -2, -1))
