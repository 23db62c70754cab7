"""Properties of the preferred-orientation simulator (spIsoNet.simulate) that can fail.

The directional FSC used here is a small brute-force conical FSC written in this file, so the
simulator is checked independently of spIsoNet.fsc3d.
"""

from __future__ import annotations

import numpy as np
import pytest

from spIsoNet import simulate as sim

BOX = 40
VOXEL = 2.5


def _freqs(n: int) -> np.ndarray:
    k = np.fft.fftfreq(n, d=1.0 / n)
    kx = np.arange(n // 2 + 1)
    return np.stack(np.meshgrid(k, k, kx, indexing="ij"), axis=-1)  # [n, n, n//2+1, 3] (z,y,x)


def conical_fsc(a: np.ndarray, b: np.ndarray, axis, cone_deg: float = 30.0) -> np.ndarray:
    """FSC per integer shell over voxels within ``cone_deg`` of ±axis (rfft, Hermitian-weighted)."""
    n = a.shape[0]
    fa, fb = np.fft.rfftn(a), np.fft.rfftn(b)
    k = _freqs(n)
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


@pytest.fixture(scope="module")
def preferred_case() -> sim.SimulatedCase:
    settings = sim.SimulationSettings(
        box=BOX,
        voxel_size=VOXEL,
        seed=11,
        orientation=sim.OrientationModel(n_particles=8000, n_views=600),
    )
    return sim.simulate_case(settings)


@pytest.fixture(scope="module")
def isotropic_case() -> sim.SimulatedCase:
    settings = sim.SimulationSettings(
        box=BOX,
        voxel_size=VOXEL,
        seed=11,
        orientation=sim.OrientationModel.isotropic(n_particles=8000, n_views=600),
    )
    return sim.simulate_case(settings)


def test_truth_is_reproducible_and_seed_dependent():
    a = sim.phantom(BOX, VOXEL, seed=5)
    b = sim.phantom(BOX, VOXEL, seed=5)
    c = sim.phantom(BOX, VOXEL, seed=6)
    assert a.dtype == np.float32 and a.shape == (BOX,) * 3
    np.testing.assert_array_equal(a, b)
    assert np.corrcoef(a.ravel(), c.ravel())[0, 1] < 0.5


def test_truth_is_protein_like(preferred_case):
    truth = preferred_case.truth
    n = truth.shape[0]
    # Compact: density is concentrated in the middle of the box, the border is solvent.
    border = np.ones_like(truth, dtype=bool)
    border[4:-4, 4:-4, 4:-4] = False
    assert np.abs(truth[border]).max() < 0.05 * truth.max()
    # Not symmetric under the obvious box symmetries (would hide axis-dependent artefacts).
    for flipped in (truth[::-1], truth[:, ::-1], truth[:, :, ::-1], truth.transpose(2, 1, 0)):
        assert np.corrcoef(truth.ravel(), flipped.ravel())[0, 1] < 0.8
    # Radial power falls by orders of magnitude from low to high resolution, monotonically
    # on average (Guinier + Wilson-like fall-off).
    power = sim.radial_power(truth)[: n // 2]
    assert power[2] / power[n // 2 - 1] > 100.0
    smooth = np.convolve(np.log(power[2:]), np.ones(4) / 4, mode="valid")
    assert np.all(np.diff(smooth) < 0.05)


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
    r = np.linalg.norm(_freqs(32), axis=-1)
    for radius in (3, 7, 12):
        shell = np.abs(r - radius) < 0.5
        assert w[shell].mean() == pytest.approx(600 / (2 * radius), rel=0.08)
    assert np.all(w[r > 16.0] == 0)  # nothing beyond Nyquist
    # Preferred views along z sample the kx-ky plane, not the kz axis.
    kz_axis = (np.abs(r - 10) < 0.5) & (np.abs(_freqs(32)[..., 0]) > 9.5)
    equator = (np.abs(r - 10) < 0.5) & (np.abs(_freqs(32)[..., 0]) < 0.5)
    assert w[equator].mean() > 5 * w[kz_axis].mean()


def test_preferred_orientation_is_anisotropic(preferred_case):
    c = preferred_case
    h1, h2 = c.half1 * c.mask, c.half2 * c.mask
    along = first_crossing(conical_fsc(h1, h2, (1, 0, 0)), 0.143)
    across = [first_crossing(conical_fsc(h1, h2, ax), 0.143) for ax in ((0, 1, 0), (0, 0, 1))]
    # The preferred axis (z) resolves far worse than the perpendicular directions.
    assert min(across) >= along + 4, (along, across)
    # The same holds against the truth (FSC-to-truth at 0.5).
    avg = 0.5 * (c.half1 + c.half2) * c.mask
    t = c.truth * c.mask
    along_t = first_crossing(conical_fsc(avg, t, (1, 0, 0)), 0.5)
    across_t = min(first_crossing(conical_fsc(avg, t, ax), 0.5) for ax in ((0, 1, 0), (0, 0, 1)))
    assert across_t >= along_t + 3, (along_t, across_t)


def test_isotropic_case_is_isotropic(isotropic_case, preferred_case):
    c = isotropic_case
    axes = ((1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (0, 1, 1))
    avg, t = 0.5 * (c.half1 + c.half2) * c.mask, c.truth * c.mask
    to_truth = [first_crossing(conical_fsc(avg, t, ax), 0.5) for ax in axes]
    assert max(to_truth) - min(to_truth) <= 2, to_truth
    halves = [
        first_crossing(conical_fsc(c.half1 * c.mask, c.half2 * c.mask, ax), 0.143) for ax in axes
    ]
    assert max(halves) - min(halves) <= 5, halves  # 30° cones at box 40 are noisy
    # Same particle number and SNR: isotropic z resolution is better than the preferred case's.
    p = preferred_case
    p_avg, p_t = 0.5 * (p.half1 + p.half2) * p.mask, p.truth * p.mask
    assert to_truth[0] >= first_crossing(conical_fsc(p_avg, p_t, (1, 0, 0)), 0.5) + 3
    # Sampling weights are isotropic on a shell (no direction more than 2x the shell mean).
    r = np.linalg.norm(_freqs(BOX), axis=-1)
    shell = np.abs(r - 12) < 0.5
    w = c.weights[0][shell]
    assert w.max() < 2.0 * w.mean() and w.min() > 0.3 * w.mean()


def test_half_maps_are_independent_noise_realisations(preferred_case):
    c = preferred_case
    n = c.truth.shape[0]
    settings = c.settings
    # Expected (noise-free) half-maps: the Wiener filter of each half applied to the signal.
    r = np.linalg.norm(_freqs(n), axis=-1)
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


def test_case_is_reproducible_and_mask_is_soft(preferred_case):
    again = sim.simulate_case(preferred_case.settings)
    np.testing.assert_array_equal(again.half1, preferred_case.half1)
    np.testing.assert_array_equal(again.half2, preferred_case.half2)
    m = preferred_case.mask
    assert m.min() >= 0.0 and m.max() <= 1.0
    assert np.mean((m > 0.01) & (m < 0.99)) > 0.02  # a real soft edge
    # The mask covers the molecule.
    truth = preferred_case.truth
    assert np.all(m[truth > 0.2 * truth.max()] > 0.99)
    assert 0.03 < np.mean(m > 0.5) < 0.6


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError):
        sim.OrientationModel(fraction_preferred=1.5)
    with pytest.raises(ValueError):
        sim.OrientationModel(cone_angle=0.0)
    with pytest.raises(ValueError):
        sim.SimulationSettings(snr=0.0)
    with pytest.raises(ValueError):
        sim.SimulationSettings(box=8)
