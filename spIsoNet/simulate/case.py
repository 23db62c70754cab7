"""A whole simulated case: truth, two independent half-maps and a mask, from the settings."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spIsoNet.fourier import frequency_radius, radial_average, rfft3
from spIsoNet.simulate.mask import soft_mask
from spIsoNet.simulate.particles import sample_views, sampling_weights
from spIsoNet.simulate.phantom import phantom
from spIsoNet.simulate.reconstruct import reconstruct_half, slice_noise_power
from spIsoNet.simulate.settings import SimulatedCase, SimulationSettings

__all__ = ["ViewSampler", "radial_power", "simulate_case", "simulate_halves"]


#: draws the view directions ``[v, 3]`` and particles per view ``[v]`` of one half
ViewSampler = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


def simulate_case(settings: SimulationSettings | None = None) -> SimulatedCase:
    """Build the truth, two independent preferred-orientation half-maps and a soft mask.

    Parameters
    ----------
    settings : SimulationSettings, optional
        Defaults: box 64, 2 Å, 10 000 particles per half, 90 % within 15° of z, SNR 0.004.

    Returns
    -------
    SimulatedCase
    """
    settings = settings or SimulationSettings()
    truth_seq, seq1, seq2 = np.random.SeedSequence(settings.seed).spawn(3)
    truth = phantom(settings.box, settings.voxel_size, truth_seq, settings.b_factor)
    return simulate_halves(truth, settings, (seq1, seq2))


def simulate_halves(
    truth: np.ndarray,
    settings: SimulationSettings,
    seeds: tuple[np.random.SeedSequence, np.random.SeedSequence],
    views: ViewSampler | None = None,
) -> SimulatedCase:
    """Two independent half-maps of a given truth (any density, e.g. of an atomic model).

    Parameters
    ----------
    truth
        float32 ``[n, n, n]`` with ``n = settings.box``.
    settings
        Voxel size, SNR, envelope and the orientation model (``settings.seed`` is not used:
        the halves draw from ``seeds``).
    seeds
        One seed sequence per half (particles, views, noise).
    views
        Draws one half's view directions and particles per view from its generator; default
        :func:`spIsoNet.simulate.particles.sample_views` with ``settings.orientation``.

    Returns
    -------
    SimulatedCase
    """
    n = truth.shape[0]
    # What the particle images carry: the truth times the imaging envelope.
    s2 = frequency_radius(n) ** 2 / (n * settings.voxel_size) ** 2
    spectrum = rfft3(truth) * np.exp(-settings.envelope_b * s2 / 4.0).astype(np.float32)
    sigma2 = slice_noise_power(spectrum, n, settings.snr)
    halves, weights, directions = [], [], []
    for seq in seeds:
        rng = np.random.default_rng(seq)
        if views is None:
            dirs, particles = sample_views(settings.orientation, rng)
        else:
            dirs, particles = views(rng)
        w = sampling_weights(dirs, n, particles, rng)
        halves.append(reconstruct_half(spectrum, w, sigma2, rng))
        weights.append(w)
        directions.append(dirs.astype(np.float32))
    mask = soft_mask(0.5 * (halves[0] + halves[1]), settings.voxel_size)
    return SimulatedCase(
        truth=truth,
        half1=halves[0],
        half2=halves[1],
        mask=mask,
        voxel_size=float(settings.voxel_size),
        weights=(weights[0], weights[1]),
        directions=(directions[0], directions[1]),
        noise_power=float(sigma2),
        settings=settings,
    )


def radial_power(volume: np.ndarray) -> np.ndarray:
    """Mean |F|² per integer Fourier shell of a cubic map (diagnostic); shape [n//2+1]."""
    return radial_average(np.abs(rfft3(volume)) ** 2, volume.shape[0])
