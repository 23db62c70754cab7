"""Synthetic half-map pairs and a brute-force 3D FSC reference for the fsc3d tests."""

from __future__ import annotations

import math

import numpy as np


def synthetic_pair(n: int, *, noise_cone_deg: float | None = None, seed: int = 0):
    """Two half-maps of one random signal with independent noise.

    Signal-to-noise ratio falls smoothly from ~10⁴ at low frequency to ≪ 1 near Nyquist. With
    ``noise_cone_deg``, every Fourier coefficient within that angle of ±kz is replaced, in each
    half independently, by noise of the same power (a missing cone along z).
    """
    rng = np.random.default_rng(seed)
    kz = np.fft.fftfreq(n) * n
    kx = np.arange(n // 2 + 1)
    z, y, x = np.meshgrid(kz, kz, kx, indexing="ij")
    r = np.sqrt(z**2 + y**2 + x**2)

    def complex_noise():
        return rng.standard_normal(r.shape) + 1j * rng.standard_normal(r.shape)

    amplitude = np.exp(-((r / (0.35 * n)) ** 2))
    sigma = 0.01 * np.exp(12.0 * r / n)
    signal = complex_noise() * amplitude
    halves = []
    for _ in range(2):
        spectrum = signal + sigma * complex_noise()
        if noise_cone_deg is not None:
            cone = (np.abs(z) >= math.cos(math.radians(noise_cone_deg)) * r) & (r > 0)
            replacement = np.sqrt(amplitude**2 + sigma**2) * complex_noise()
            spectrum = np.where(cone, replacement, spectrum)
        halves.append(np.fft.irfftn(spectrum, s=(n, n, n), axes=(0, 1, 2)).astype(np.float32))
    return halves


def centred_shells(n: int) -> np.ndarray:
    k = np.arange(n) - n // 2
    r2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
    return np.floor(np.sqrt(r2) + 0.5).astype(int)


def brute_force_fsc3d(h1, h2, cone_angle, max_shell, method="weighted"):
    """Slow reference straight from the definition: full centred float64 FFT, for every voxel
    the sums over all voxels of its shell within cone_angle of ±k."""
    n = h1.shape[0]
    f1 = np.fft.fftshift(np.fft.fftn(h1.astype(np.float64)))
    f2 = np.fft.fftshift(np.fft.fftn(h2.astype(np.float64)))
    k = np.arange(n) - n // 2
    coords = np.stack(np.meshgrid(k, k, k, indexing="ij"), -1).reshape(-1, 3).astype(float)
    shells = centred_shells(n).ravel()
    cross = (f1 * f2.conj()).real.ravel()
    p1 = (np.abs(f1) ** 2).ravel()
    p2 = (np.abs(f2) ** 2).ravel()
    cosine = np.where(p1 * p2 > 0, cross / np.sqrt(p1 * p2), 0.0)
    out = np.zeros(n**3)
    cos_t = math.cos(math.radians(cone_angle))
    for shell in range(1, max_shell + 1):
        idx = np.nonzero(shells == shell)[0]
        units = coords[idx] / np.linalg.norm(coords[idx], axis=1, keepdims=True)
        inside = (np.abs(units @ units.T) >= cos_t).astype(float)
        if method == "weighted":
            out[idx] = (inside @ cross[idx]) / np.sqrt((inside @ p1[idx]) * (inside @ p2[idx]))
        else:
            out[idx] = (inside @ cosine[idx]) / inside.sum(axis=1)
    out[shells == 0] = 1.0
    return out.reshape(n, n, n)
