"""Conical sums (spIsoNet.fsc3d.conical) against a brute-force float64 reference, layout."""

from __future__ import annotations

import numpy as np
import pytest

from spIsoNet import fourier
from spIsoNet.fsc3d import ConicalFSC, compute_fsc3d, directional_fsc, fibonacci_axes

from ._synthetic import brute_force_fsc3d, centred_shells, synthetic_pair


@pytest.mark.parametrize("n", [24, 25])
@pytest.mark.parametrize("cone", [10.0, 20.0])
@pytest.mark.parametrize("method", ["weighted", "cosine"])
def test_fsc3d_matches_brute_force_reference(n, cone, method):
    h1, h2 = synthetic_pair(n, seed=n)
    # make the correlations middling so that errors would show (not all ≈ 1)
    rng = np.random.default_rng(7)
    h1 = h1 + 0.02 * rng.standard_normal(h1.shape).astype(np.float32)
    h2 = h2 + 0.02 * rng.standard_normal(h2.shape).astype(np.float32)
    max_shell = (n - 1) // 2
    ours = ConicalFSC(h1, h2, method=method).volume(cone, max_shell)
    reference = brute_force_fsc3d(h1, h2, cone, max_shell, method)
    assert ours.shape == (n, n, n)
    assert reference[centred_shells(n) <= max_shell].std() > 0.1  # a non-trivial comparison
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


def test_binned_path_close_to_exact_definition():
    """Large shells use direction cells: same definition up to a smoothed cone edge."""
    n = 40
    h1, h2 = synthetic_pair(n, noise_cone_deg=30.0, seed=3)
    shells = centred_shells(n)
    region = (shells > 8) & (shells <= 19)
    for cone, mean_tol, p99_tol in ((10.0, 0.03, 0.12), (20.0, 0.015, 0.06)):
        exact = ConicalFSC(h1, h2, exact_max_shell=19).volume(cone, 19)
        binned = ConicalFSC(h1, h2, exact_max_shell=8).volume(cone, 19)
        diff = np.abs(binned - exact)[region]
        assert diff.mean() < mean_tol, (cone, diff.mean())
        assert np.percentile(diff, 99) < p99_tol, (cone, np.percentile(diff, 99))
        # same values on the exact shells
        np.testing.assert_array_equal(binned[shells <= 8], exact[shells <= 8])


@pytest.mark.slow
def test_binned_path_close_to_exact_definition_64():
    """Slow variant of the test above on a 64³ box (exact reference up to shell 31)."""
    n = 64
    h1, h2 = synthetic_pair(n, noise_cone_deg=30.0, seed=11)
    shells = centred_shells(n)
    region = (shells > 16) & (shells <= 31)
    for cone, mean_tol, p99_tol in ((10.0, 0.025, 0.1), (20.0, 0.015, 0.05)):
        exact = ConicalFSC(h1, h2, exact_max_shell=31).volume(cone, 31)
        binned = ConicalFSC(h1, h2).volume(cone, 31)
        diff = np.abs(binned - exact)[region]
        assert diff.mean() < mean_tol, (cone, diff.mean())
        assert np.percentile(diff, 99) < p99_tol, (cone, np.percentile(diff, 99))


def test_ninety_degree_cone_is_the_global_fsc():
    """A 90° double cone holds the whole shell: FSC3D = global FSC on both paths."""
    n = 44
    h1, h2 = synthetic_pair(n, noise_cone_deg=30.0, seed=9)
    engine = ConicalFSC(h1, h2)
    shells = centred_shells(n)
    inside = shells <= (n - 1) // 2
    volume = engine.volume(90.0, (n - 1) // 2)
    np.testing.assert_allclose(volume[inside], engine.global_fsc[shells[inside]], atol=1e-6)
    curves = engine.directional(fibonacci_axes(5), 90.0)
    np.testing.assert_allclose(curves, np.broadcast_to(engine.global_fsc, curves.shape), atol=1e-6)


def test_identical_halves_give_one_inside_limit_and_zero_beyond():
    n = 48  # shells above 16 take the binned path
    h1, _ = synthetic_pair(n, seed=1)
    result = compute_fsc3d(h1, h1.copy(), 1.5, limit_res=4.0)
    shells = centred_shells(n)
    limit_shell = int(n * 1.5 / 4.0)
    assert result.limit_shell == limit_shell
    inside = shells <= limit_shell
    np.testing.assert_allclose(result.volume[inside], 1.0, atol=1e-5)
    assert np.all(result.volume[~inside] == 0.0)
    assert result.volume.dtype == np.float32


@pytest.mark.parametrize("n", [32, 33, 50])
def test_volume_layout_dc_at_centre_and_friedel_symmetric(n):
    h1, h2 = synthetic_pair(n, seed=2)
    volume = compute_fsc3d(h1, h2, 1.0, limit_res=2.0).volume
    c = n // 2
    assert volume[c, c, c] == 1.0
    # value at k equals value at -k (index c+k ↔ c-k), on the part where both exist
    lo = 1 if n % 2 == 0 else 0
    part = volume[lo:, lo:, lo:]
    np.testing.assert_array_equal(part, part[::-1, ::-1, ::-1])
    # the Nyquist plane (even boxes) and the corners are zero
    if n % 2 == 0:
        assert np.all(volume[0] == 0) and np.all(volume[:, :, 0] == 0)
    assert np.all(volume[centred_shells(n) > (n - 1) // 2] == 0)


def test_global_fsc_and_default_limit_match_fourier_toolkit():
    n = 40
    h1, h2 = synthetic_pair(n, seed=4)
    mask = np.zeros((n, n, n), np.float32)
    mask[4:-4, 4:-4, 4:-4] = 1.0
    result = compute_fsc3d(h1, h2, 1.3, mask=mask)
    expected = fourier.fsc_curve(h1, h2, mask)
    np.testing.assert_allclose(result.global_fsc, expected, atol=1e-5)
    expected_res = fourier.resolution_at(expected, n, 1.3, 0.143).angstrom
    assert result.limit_res == pytest.approx(expected_res, rel=1e-4)
    assert result.limit_shell == int(n * 1.3 / result.limit_res)
    # the mask is applied before the FFT: same as passing masked maps
    premasked = compute_fsc3d(h1 * mask, h2 * mask, 1.3, limit_res=result.limit_res)
    np.testing.assert_allclose(premasked.volume, result.volume, atol=1e-6)


def test_directional_curves_agree_with_volume_along_axes():
    n = 44
    h1, h2 = synthetic_pair(n, noise_cone_deg=30.0, seed=5)
    engine = ConicalFSC(h1, h2)
    volume = engine.volume(20.0, (n - 1) // 2)
    axes = np.eye(3)  # z, y, x
    curves = engine.directional(axes, 20.0)
    c = n // 2
    r = np.arange(1, (n - 1) // 2 + 1)
    along = np.stack([volume[c + r, c, c], volume[c, c + r, c], volume[c, c, c + r]])
    exact = r <= engine.exact_max_shell
    np.testing.assert_allclose(curves[:, 1:][:, : len(r)][:, exact], along[:, exact], atol=1e-6)
    assert np.abs(curves[:, 1:][:, : len(r)][:, ~exact] - along[:, ~exact]).mean() < 0.03
    # the public wrapper gives the same curves
    dirs, public = directional_fsc(h1, h2, directions=axes, cone_angle=20.0)
    np.testing.assert_allclose(public, curves, atol=1e-9)
    np.testing.assert_allclose(dirs, axes)
