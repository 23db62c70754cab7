"""3D FSC: conical sums against a brute-force float64 reference, layout, anisotropy metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spIsoNet import fourier
from spIsoNet.fsc3d import (
    ConicalFSC,
    anisotropy_summary,
    compute_fsc3d,
    directional_fsc,
    fibonacci_axes,
)
from spIsoNet.fsc3d.directions import axis_angle_deg, cell_centres, cone_weights, face_coordinates
from spIsoNet.fsc3d.report import first_crossings
from spIsoNet.fsc3d.sphericity import isosurface_area, radially_connected, sphericity


# ----------------------------------------------------------------------------------------------
# helpers
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


# ----------------------------------------------------------------------------------------------
# conical FSC values
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
    dirs, public = directional_fsc(h1, h2, 1.0, directions=axes, cone_angle=20.0)
    np.testing.assert_allclose(public, curves, atol=1e-9)
    np.testing.assert_allclose(dirs, axes)


# ----------------------------------------------------------------------------------------------
# anisotropy metrics
def test_missing_cone_along_z_is_detected():
    n = 56
    h1, h2 = synthetic_pair(n, noise_cone_deg=30.0, seed=6)
    axes, curves = directional_fsc(h1, h2, 1.0, directions=np.eye(3), cone_angle=20.0)
    _, res, _ = first_crossings(curves, n, 1.0, 0.143, min_shell=4)
    res_z, res_y, res_x = res
    assert res_z > 3 * max(res_x, res_y), res
    summary = anisotropy_summary(h1, h2, 1.0)
    assert summary["sphericity"] < 0.8
    worst = np.asarray(summary["worst_direction"])
    assert axis_angle_deg(worst, [1.0, 0.0, 0.0]) < 20.0  # worst axis is near z
    assert axis_angle_deg(np.asarray(summary["best_direction"]), [1.0, 0.0, 0.0]) > 30.0
    assert summary["dir_res_max"] > 3 * summary["dir_res_min"]
    assert summary["cfar"] < 0.5


def test_isotropic_pair_is_spherical():
    n = 56
    h1, h2 = synthetic_pair(n, seed=8)
    summary = anisotropy_summary(h1, h2, 1.0)
    assert summary["sphericity"] > 0.95
    assert summary["dir_res_max"] < 1.3 * summary["dir_res_min"]
    assert summary["cfar"] > 0.5
    expected = fourier.resolution_at(fourier.fsc_curve(h1, h2), n, 1.0, 0.143).angstrom
    assert summary["global_res_0143"] == pytest.approx(expected, rel=1e-4)
    assert summary["dir_res_min"] <= summary["dir_res_mean"] <= summary["dir_res_max"]
    keys = {
        "global_res_0143", "global_res_05", "sphericity", "dir_res_min", "dir_res_max",
        "dir_res_mean", "dir_res_std", "best_direction", "worst_direction", "cfar",
    }  # fmt: skip
    assert keys <= set(summary)


def test_first_crossings_match_resolution_at(rng):
    curves = np.cumsum(-np.abs(rng.standard_normal((20, 33))) * 0.08, axis=1) + 1.0
    curves[3] = 0.9  # never crosses
    shells, res, crossed = first_crossings(curves, 64, 1.1, 0.143)
    for i, curve in enumerate(curves):
        expected = fourier.resolution_at(curve, 64, 1.1, 0.143)
        assert res[i] == pytest.approx(expected.angstrom)
        assert shells[i] == pytest.approx(expected.shell)
        assert crossed[i] == expected.crossed


# ----------------------------------------------------------------------------------------------
# sphericity pieces
def _grid(n):
    k = np.arange(n) - n // 2
    return np.meshgrid(k, k, k, indexing="ij")


def test_isosurface_area_of_sphere():
    z, y, x = _grid(64)
    field = 20.0 - np.sqrt(z**2 + y**2 + x**2)
    assert isosurface_area(field, 0.0) == pytest.approx(4 * math.pi * 20.0**2, rel=0.005)


def test_sphericity_of_ball_and_ellipsoid():
    z, y, x = _grid(96)
    ball = (np.sqrt(z**2 + y**2 + x**2) <= 25).astype(np.float32)
    assert sphericity(ball) == pytest.approx(1.0, abs=0.01)
    a, c = 30.0, 12.0  # oblate spheroid, analytic surface area
    spheroid = ((z / c) ** 2 + (y / a) ** 2 + (x / a) ** 2 <= 1).astype(np.float32)
    e = math.sqrt(1 - c**2 / a**2)
    area = 2 * math.pi * a**2 * (1 + (1 - e**2) / e * math.atanh(e))
    volume = 4 / 3 * math.pi * a * a * c
    expected = math.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area
    assert sphericity(spheroid) == pytest.approx(expected, abs=0.01)


def test_radial_connectivity_cuts_behind_a_gap_and_highpass_fills():
    n = 48
    z, y, x = _grid(n)
    r = np.sqrt(z**2 + y**2 + x**2)
    volume = (r <= 20).astype(np.float32)
    volume[(r > 8) & (r < 10) & (z > 0)] = 0.0  # gap in the upper half only
    kept = radially_connected(volume, 0.143)
    c = n // 2
    assert not kept[c + 15, c, c] and kept[c - 15, c, c] and kept[c, c + 15, c]
    assert not kept[(r > 10) & (z > 0.8 * r) & (r <= 20)].any()  # chains cross the gap
    # below highpass_res everything counts as kept: gap at r≈9 closes when 200 Å ↔ r = 12
    filled = radially_connected(volume, 0.143, voxel_size=200.0 * 12 / n, highpass_res=200.0)
    assert filled[c + 15, c, c]


# ----------------------------------------------------------------------------------------------
# directions
def test_fibonacci_axes_cover_the_hemisphere_evenly():
    axes = fibonacci_axes(256)
    np.testing.assert_allclose(np.linalg.norm(axes, axis=1), 1.0)
    assert np.all(axes[:, 0] >= 0)
    angles = axis_angle_deg(axes[:, None, :], axes[None, :, :])
    np.fill_diagonal(angles, 90.0)
    nearest = angles.min(axis=1)
    # 256 axes ≈ 2π/256 sr each → spacing ≈ 9°; no clumping, no holes
    assert nearest.min() > 4.0 and nearest.max() < 12.0
    # any axis on the sphere is within ~8° of one of them
    probe = np.random.default_rng(0).standard_normal((500, 3))
    assert axis_angle_deg(probe[:, None, :], axes[None]).min(axis=1).max() < 9.0


def test_face_coordinates_round_trip_and_antipode_invariance(rng):
    vectors = rng.standard_normal((1000, 3))
    face, alpha, beta = face_coordinates(*vectors.T)
    face2, alpha2, beta2 = face_coordinates(*(-vectors).T)
    assert np.array_equal(face, face2)
    np.testing.assert_allclose(alpha, alpha2)
    assert np.all(np.abs(alpha) <= math.pi / 4 + 1e-6) and np.all(
        np.abs(beta) <= math.pi / 4 + 1e-6
    )
    centres, _ = cell_centres(8, 1)
    assert centres.shape == (3 * 10 * 10, 3)


def test_cone_weights_cover_the_cap_area():
    """Σ weights · cell solid angle ≈ the cap's solid angle 2π(1 − cos θ).

    Cells are axes (±k share a cell), so the 3·g² cells tile a hemisphere's 2π sr and a double
    cone covers one cap's worth of them."""
    g = 40
    centres, size = cell_centres(g, 0)
    axes = fibonacci_axes(50)
    for cone in (10.0, 20.0):
        weights = cone_weights(axes, cone, g)
        area = weights @ (size**2)
        expected = 2 * math.pi * (1 - math.cos(math.radians(cone)))
        np.testing.assert_allclose(area, expected, rtol=0.02)
    np.testing.assert_allclose(np.sum(size**2), 2 * math.pi, rtol=1e-3)
