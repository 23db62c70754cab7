"""Brute-force Fourier helpers of the simulator tests (independent of spIsoNet.fsc3d)."""

from __future__ import annotations

import numpy as np

BOX = 40
VOXEL = 2.5


def freqs(n: int) -> np.ndarray:
    k = np.fft.fftfreq(n, d=1.0 / n)
    kx = np.arange(n // 2 + 1)
    return np.stack(np.meshgrid(k, k, kx, indexing="ij"), axis=-1)  # [n, n, n//2+1, 3] (z,y,x)


def conical_fsc(a: np.ndarray, b: np.ndarray, axis, cone_deg: float = 30.0) -> np.ndarray:
    """FSC per integer shell over voxels within ``cone_deg`` of ±axis (rfft, Hermitian-weighted)."""
    n = a.shape[0]
    fa, fb = np.fft.rfftn(a), np.fft.rfftn(b)
    k = freqs(n)
    r = np.linalg.norm(k, axis=-1)
    u = np.asarray(axis, float) / np.linalg.norm(axis)
    cos = np.abs(k @ u) / np.maximum(r, 1e-9)
    mult = np.where((np.arange(n // 2 + 1) == 0) | (np.arange(n // 2 + 1) == n // 2), 1.0, 2.0)
    w = (cos >= np.cos(np.deg2rad(cone_deg))) * mult[None, None, :]
    shells = np.floor(r + 0.5).astype(int).ravel()
    num = np.bincount(shells, ((fa * fb.conj()).real * w).ravel())
    da = np.bincount(shells, (np.abs(fa) ** 2 * w).ravel())
    db = np.bincount(shells, (np.abs(fb) ** 2 * w).ravel())
    return (num / np.sqrt(da * db + 1e-30))[: n // 2 + 1]


def first_crossing(fsc: np.ndarray, threshold: float) -> int:
    """First shell (≥ 3, the first shells hold too few voxels per cone) below the threshold."""
    below = np.nonzero(fsc[3:] < threshold)[0]
    return int(below[0]) + 3 if below.size else len(fsc)
