"""View directions and Fourier-slice sampling weights (spIsoNet.simulate.particles)."""

from __future__ import annotations

import numpy as np
import pytest

from spIsoNet import simulate as sim

from ._brute import freqs


def test_view_distribution_matches_model():
    rng = np.random.default_rng(0)
    model = sim.OrientationModel(fraction_preferred=0.9, cone_angle=15.0, axis=(0.0, 1.0, 1.0))
    dirs = sim.sample_view_directions(model, 20000, rng)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0, atol=1e-9)
    axis = np.array([0.0, 1.0, 1.0]) / np.sqrt(2.0)
    angle = np.degrees(np.arccos(np.clip(np.abs(dirs @ axis), 0, 1)))
    # 90 % in the cone plus the uniform ones that fall into it by chance (1 - cos 15° = 3.4 %).
    expected = 0.9 + 0.1 * (1.0 - np.cos(np.deg2rad(15.0)))
    assert abs(np.mean(angle <= 15.0) - expected) < 0.01
    # The uniform rest is uniform: |cos| of the out-of-cone ones is uniform on [0, cos 15°].
    outside = np.abs(dirs @ axis)[angle > 15.0]
    assert abs(np.mean(outside) - np.cos(np.deg2rad(15.0)) / 2) < 0.03

    views, particles = sim.sample_views(sim.OrientationModel(n_particles=5000, n_views=300), rng)
    assert views.shape == (len(particles), 3) and len(particles) <= 300
    assert particles.sum() == pytest.approx(5000)


def test_sampling_weights_shell_mean_is_analytic():
    """Any set of central slices covers a fraction 1/(2|k|) of shell |k| on average."""
    rng = np.random.default_rng(1)
    model = sim.OrientationModel()
    dirs = sim.sample_view_directions(model, 200, rng)
    w = sim.sampling_weights(dirs, 32, particles_per_view=3.0, rng=rng)
    assert w.shape == (32, 32, 17)
    r = np.linalg.norm(freqs(32), axis=-1)
    for radius in (3, 7, 12):
        shell = np.abs(r - radius) < 0.5
        assert w[shell].mean() == pytest.approx(600 / (2 * radius), rel=0.08)
    assert np.all(w[r > 16.0] == 0)  # nothing beyond Nyquist
    # Preferred views along z sample the kx-ky plane, not the kz axis.
    kz_axis = (np.abs(r - 10) < 0.5) & (np.abs(freqs(32)[..., 0]) > 9.5)
    equator = (np.abs(r - 10) < 0.5) & (np.abs(freqs(32)[..., 0]) < 0.5)
    assert w[equator].mean() > 5 * w[kz_axis].mean()
