"""Half-map reconstruction from the accumulated noisy Fourier slices (stage 4)."""

from __future__ import annotations

import numpy as np

from spIsoNet.fourier import (
    frequency_radius,
    irfft3,
    radial_average,
    rfft3,
    rfft_multiplicity,
    shell_index,
)

__all__ = ["reconstruct_half", "slice_noise_power"]


def slice_noise_power(truth_spectrum: np.ndarray, box: int, snr: float) -> float:
    """σ² per Fourier sample so that the average projection image has the requested SNR.

    A uniformly oriented tent-kernel slice samples a voxel at radius |k| ≥ 1 with mean weight
    1/(2|k|), so the orientation-averaged slice power is Σ_k |F(k)|² · min(1, 1/(2|k|)), DC
    excluded. The pixel variance of the projection is that power / box⁴ (2-D Parseval) and the
    pixel noise variance is σ_img² = signal / snr; one Fourier sample of the noise image then
    has variance σ² = σ_img² · box².
    """
    r = frequency_radius(box)
    mult = rfft_multiplicity(box)[None, None, :]
    sample = np.where(r > 0, np.minimum(1.0, 1.0 / (2.0 * np.maximum(r, 1e-6))), 0.0)
    slice_power = float(np.sum(np.abs(truth_spectrum) ** 2 * sample * mult))
    pixel_signal = slice_power / box**4
    return pixel_signal / snr * box**2


def reconstruct_half(
    truth_spectrum: np.ndarray,
    weights: np.ndarray,
    noise_power: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Wiener reconstruction of one half-map from its accumulated noisy Fourier slices.

    Parameters
    ----------
    truth_spectrum : np.ndarray
        complex64 [n, n, n//2+1], rfft of the signal the images carry (truth × envelope).
    weights : np.ndarray
        W from :func:`sampling_weights` (particles), same layout.
    noise_power : float
        σ², noise power per Fourier sample of one particle.
    rng : numpy Generator
        Noise source of this half.

    Returns
    -------
    np.ndarray
        float32 [n, n, n] half-map.
    """
    n = truth_spectrum.shape[0]
    # ξ: FFT of unit white noise / sqrt(n³) → Hermitian, unit variance per coefficient.
    xi = rfft3(rng.standard_normal((n, n, n), dtype=np.float32)) / np.float32(n**1.5)
    numerator = weights * truth_spectrum + np.sqrt(noise_power * weights) * xi
    shells = shell_index(n)
    # τ² on every shell up to the box corner (the weights reach past Nyquist only as zeros)
    tau2 = radial_average(np.abs(truth_spectrum) ** 2, n, n_shells=int(shells.max()) + 1)
    regulariser = noise_power / np.maximum(tau2[shells], 1e-30)
    estimate = numerator / (weights + regulariser).astype(np.float32)
    estimate[0, 0, 0] = truth_spectrum[0, 0, 0]  # the mean density is not of interest
    return irfft3(estimate, n)
