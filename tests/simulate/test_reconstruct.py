"""Half-map reconstruction: noise model and independence (spIsoNet.simulate.reconstruct)."""

from __future__ import annotations

import numpy as np
import pytest

from ._brute import freqs


def test_half_maps_are_independent_noise_realisations(preferred_case):
    c = preferred_case
    n = c.truth.shape[0]
    settings = c.settings
    # Expected (noise-free) half-maps: the Wiener filter of each half applied to the signal.
    r = np.linalg.norm(freqs(n), axis=-1)
    s2 = r**2 / (n * settings.voxel_size) ** 2
    signal = np.fft.rfftn(c.truth) * np.exp(-settings.envelope_b * s2 / 4.0)
    shells = np.floor(r + 0.5).astype(int)
    mult = np.where((np.arange(n // 2 + 1) == 0) | (np.arange(n // 2 + 1) == n // 2), 1, 2)
    mult = np.broadcast_to(mult[None, None, :], shells.shape)
    tau2 = np.bincount(shells.ravel(), (np.abs(signal) ** 2 * mult).ravel()) / np.bincount(
        shells.ravel(), mult.ravel()
    )
    residuals = []
    for half, w in ((c.half1, c.weights[0]), (c.half2, c.weights[1])):
        gain = w / (w + c.noise_power / tau2[shells])
        expected = np.fft.rfftn(half) - gain * signal
        expected[0, 0, 0] = 0
        residuals.append(expected)
        # Residual power matches the model σ²W/(W+σ²/τ²)² within 15 % over the sampled voxels.
        model = c.noise_power * w / (w + c.noise_power / tau2[shells]) ** 2
        inside = (r > 2) & (r < n / 2 - 1)
        ratio = np.sum(np.abs(expected[inside]) ** 2) / np.sum(model[inside])
        assert ratio == pytest.approx(1.0, abs=0.15)
    # The two residuals are uncorrelated (independent particles and noise): |corr| < 4/sqrt(N).
    a, b = residuals
    inside = (r > 2) & (r < n / 2 - 1)
    corr = np.sum((a * b.conj()).real[inside]) / np.sqrt(
        np.sum(np.abs(a[inside]) ** 2) * np.sum(np.abs(b[inside]) ** 2)
    )
    assert abs(corr) < 4.0 / np.sqrt(inside.sum())
    assert not np.allclose(c.directions[0], c.directions[1])
