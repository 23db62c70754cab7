"""Fourier toolkit against brute-force and analytic references."""

from __future__ import annotations

import numpy as np
import pytest

from spIsoNet import fourier


def _brute_radius(n: int, rfft: bool, centered: bool) -> np.ndarray:
    out = np.zeros((n, n, n // 2 + 1) if rfft else (n, n, n))
    for z in range(out.shape[0]):
        for y in range(out.shape[1]):
            for x in range(out.shape[2]):
                if centered:
                    k = (z - n // 2, y - n // 2, x - n // 2)
                else:
                    k = tuple(i if i <= n // 2 else i - n for i in (z, y))
                    k = k + ((x if rfft or x <= n // 2 else x - n),)
                    # numpy's fftfreq puts n/2 at the negative side for even n
                    k = tuple(
                        (
                            -n // 2
                            if (n % 2 == 0 and abs(v) == n // 2 and axis < (2 if rfft else 3))
                            else v
                        )
                        for axis, v in enumerate(k)
                    )
                out[z, y, x] = np.sqrt(sum(v * v for v in k))
    return out


@pytest.mark.parametrize("n", [6, 7, 10, 11])
@pytest.mark.parametrize("rfft, centered", [(True, False), (False, False), (False, True)])
def test_shell_index_matches_brute_force(n, rfft, centered):
    radius = _brute_radius(n, rfft, centered)
    np.testing.assert_allclose(fourier.frequency_radius(n, rfft, centered), radius, atol=1e-5)
    np.testing.assert_array_equal(
        fourier.shell_index(n, rfft, centered), np.floor(radius + 0.5).astype(int)
    )


@pytest.mark.parametrize("n", [8, 9])
def test_rfft_multiplicity_reproduces_full_spectrum_sums(n, rng):
    volume = rng.standard_normal((n, n, n))
    full = np.abs(np.fft.fftn(volume)) ** 2
    half = np.abs(fourier.rfft3(volume)) ** 2
    full_shells = np.floor(fourier.frequency_radius(n, rfft=False) + 0.5).astype(int)
    expected = np.bincount(full_shells.ravel(), weights=full.ravel())[: n // 2 + 1]
    got = fourier.shell_sums(half, fourier.shell_index(n), n // 2 + 1, fourier.rfft_multiplicity(n))
    np.testing.assert_allclose(got, expected, rtol=1e-4)


@pytest.mark.parametrize("n", [16, 17])
def test_fsc_identical_is_one_and_matches_float64_reference(n, rng):
    a = rng.standard_normal((n, n, n)).astype(np.float32)
    b = (a + rng.standard_normal((n, n, n))).astype(np.float32)
    np.testing.assert_allclose(fourier.fsc_curve(a, a), 1.0, atol=1e-6)
    # float64 full-spectrum reference
    fa, fb = np.fft.fftn(a.astype(np.float64)), np.fft.fftn(b.astype(np.float64))
    shells = np.floor(fourier.frequency_radius(n, rfft=False) + 0.5).astype(int).ravel()
    m = n // 2 + 1
    num = np.bincount(shells, (fa * fb.conj()).real.ravel())[:m]
    den = np.sqrt(
        np.bincount(shells, (np.abs(fa) ** 2).ravel())[:m]
        * np.bincount(shells, (np.abs(fb) ** 2).ravel())[:m]
    )
    np.testing.assert_allclose(fourier.fsc_curve(a, b), num / den, atol=1e-5)


def test_fsc_of_independent_noise_is_within_three_sigma(rng):
    n = 48
    a = rng.standard_normal((n, n, n)).astype(np.float32)
    b = rng.standard_normal((n, n, n)).astype(np.float32)
    fsc = fourier.fsc_curve(a, b)
    counts = np.bincount(fourier.shell_index(n, rfft=False).ravel())[: n // 2 + 1]
    # real-valued maps: a shell of c voxels holds c/2 independent complex values
    bound = 3.0 / np.sqrt(counts[1:] / 2.0)
    assert np.all(np.abs(fsc[1:]) < np.maximum(bound, 3.0 / np.sqrt(counts[1:])))
    assert np.abs(fsc[4:]).mean() < 0.05


def test_resolution_at_interpolates_and_flags_no_crossing():
    fsc = np.array([1.0, 0.9, 0.6, 0.3, 0.1, 0.0])
    res = fourier.resolution_at(fsc, box=10, voxel_size=2.0, threshold=0.5)
    assert res.crossed
    assert res.shell == pytest.approx(2 + 0.1 / 0.3)
    assert res.angstrom == pytest.approx(20.0 / res.shell)
    never = fourier.resolution_at(np.ones(6), box=10, voxel_size=2.0)
    assert not never.crossed and never.angstrom == pytest.approx(4.0)


def test_lowpass_passes_below_and_removes_beyond_cutoff(rng):
    n, apix, res = 32, 1.0, 4.0  # cutoff at shell 8
    volume = rng.standard_normal((n, n, n)).astype(np.float32)
    filtered = fourier.lowpass(volume, res, apix, edge_width=2.0)
    before, after = fourier.rfft3(volume), fourier.rfft3(filtered)
    radius = fourier.frequency_radius(n)
    low, high = radius <= 7.0, radius >= 9.0
    np.testing.assert_allclose(after[low], before[low], rtol=1e-4, atol=1e-3)
    assert np.abs(after[high]).max() < 1e-3 * np.abs(before[high]).max()
    edge = (radius > 7.5) & (radius < 8.5)
    ratio = np.abs(after[edge]) / np.maximum(np.abs(before[edge]), 1e-9)
    assert 0.05 < ratio.mean() < 0.95


def _power_law_map(n: int, exponent: float, rng) -> np.ndarray:
    radius = np.maximum(fourier.frequency_radius(n), 1.0)
    phases = np.exp(2j * np.pi * rng.random(radius.shape))
    return fourier.irfft3((radius**-exponent * phases).astype(np.complex64), n)


def test_whitening_flattens_a_power_law_in_its_band(rng):
    n, apix = 64, 1.0
    volume = _power_law_map(n, 1.5, rng)
    low_res, high_res = 16.0, 4.0  # shells 4 … 16
    whitened = fourier.whiten(volume, apix, low_res=low_res, high_res=high_res)
    profile_in = fourier.radial_average(np.abs(fourier.rfft3(volume)), n)
    profile_out = fourier.radial_average(np.abs(fourier.rfft3(whitened)), n)
    band = profile_out[5:16]
    assert band.std() / band.mean() < 0.03
    assert profile_in[5:16].std() / profile_in[5:16].mean() > 0.3
    np.testing.assert_allclose(profile_out[1:4], profile_in[1:4], rtol=1e-3)


def test_combine_maps_takes_low_from_a_and_high_from_b_exactly(rng):
    n, apix = 32, 1.0
    a = rng.standard_normal((n, n, n)).astype(np.float32)
    b = rng.standard_normal((n, n, n)).astype(np.float32)
    combined = fourier.combine_maps(
        a, b, threshold_res=4.0, voxel_size=apix, edge_width=2.0, match=False
    )
    fa, fb, fc = fourier.rfft3(a), fourier.rfft3(b), fourier.rfft3(combined)
    radius = fourier.frequency_radius(n)
    low, high = radius <= 7.0, radius >= 9.0
    np.testing.assert_allclose(fc[low], fa[low], atol=2e-3)
    np.testing.assert_allclose(fc[high], fb[high], atol=2e-3)


def test_combine_maps_with_matching_keeps_phases_of_a_and_amplitudes_of_b(rng):
    n, apix = 32, 1.0
    a = _power_law_map(n, 2.0, rng) * 5.0
    b = rng.standard_normal((n, n, n)).astype(np.float32)
    combined = fourier.combine_maps(a, b, threshold_res=4.0, voxel_size=apix, edge_width=2.0)
    fa, fb, fc = fourier.rfft3(a), fourier.rfft3(b), fourier.rfft3(combined)
    radius = fourier.frequency_radius(n)
    low = (radius >= 1.0) & (radius <= 7.0)
    phase_diff = np.angle(fc[low] * np.conj(fa[low]))
    assert np.abs(phase_diff).max() < 1e-3
    amp_c = fourier.radial_average(np.abs(fc), n)
    amp_b = fourier.radial_average(np.abs(fb), n)
    np.testing.assert_allclose(amp_c[1:7], amp_b[1:7], rtol=1e-3)


def test_fsc_weighting_modes():
    fsc = np.array([1.0, 0.5, 0.0, -0.2])
    np.testing.assert_allclose(fourier.fsc_weighting(fsc, "plain"), [1.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(
        fourier.fsc_weighting(fsc, "sqrt"), [1.0, np.sqrt(1.0 / 1.5), 0.0, 0.0]
    )
    with pytest.raises(ValueError):
        fourier.fsc_weighting(fsc, "bogus")


def test_apply_radial_filter_with_ones_is_identity(rng):
    volume = rng.standard_normal((15, 15, 15)).astype(np.float32)
    out = fourier.apply_radial_filter(volume, np.ones(8))
    np.testing.assert_allclose(out, volume, atol=1e-5)


def test_masked_fsc_correction_removes_mask_induced_correlation(rng):
    n = 48
    signal = fourier.lowpass(rng.standard_normal((n, n, n)).astype(np.float32), 8.0, 1.0)
    noise = 0.3 * float(signal.std())
    half1 = signal + noise * rng.standard_normal((n, n, n)).astype(np.float32)
    half2 = signal + noise * rng.standard_normal((n, n, n)).astype(np.float32)
    radius = np.sqrt(((np.indices((n, n, n)) - n // 2) ** 2).sum(0))
    mask = np.clip(14.0 - radius, 0, 1).astype(np.float32)  # sharp mask: strong convolution
    report = fourier.masked_fsc_corrected(half1, half2, mask)
    beyond = np.arange(n // 2 + 1) >= 11  # no signal there: the true FSC is ≈ 0
    assert np.abs(report.unmasked[beyond]).mean() < 0.05
    assert report.masked[beyond].mean() > 0.3  # mask-induced correlation
    assert np.abs(report.corrected[beyond]).mean() < 0.15
    np.testing.assert_allclose(report.corrected[:7], report.masked[:7])


@pytest.mark.parametrize("n", [16, 17])
def test_frequency_axes_build_the_radius(n):
    kz, ky, kx = fourier.frequency_axes(n)
    assert kz.shape == (n, 1, 1) and ky.shape == (1, n, 1) and kx.shape == (1, 1, n // 2 + 1)
    np.testing.assert_array_equal(kz.ravel(), np.fft.fftfreq(n, 1.0 / n))
    radius = np.sqrt(kz**2 + ky**2 + kx**2)
    np.testing.assert_allclose(radius, fourier.frequency_radius(n), atol=1e-6)


def test_radial_average_can_include_the_corner_shells(rng):
    n = 12
    values = rng.random((n, n, n // 2 + 1)).astype(np.float32)
    shells = fourier.shell_index(n)
    all_shells = int(shells.max()) + 1
    full = fourier.radial_average(values, n, n_shells=all_shells)
    assert full.shape == (all_shells,)
    np.testing.assert_allclose(full[: n // 2 + 1], fourier.radial_average(values, n))
    weights = np.broadcast_to(fourier.rfft_multiplicity(n), shells.shape)
    for shell in (0, n // 2 + 1, all_shells - 1):  # DC, first and last shell past Nyquist
        inside = shells == shell
        expected = np.sum(values[inside] * weights[inside]) / np.sum(weights[inside])
        assert full[shell] == pytest.approx(expected, rel=1e-6)


def test_fourier_resize_samples_a_band_limited_map_exactly():
    # a sum of plane waves below the small grid's Nyquist, evaluated on two grids of the same
    # field of view: cropping the fine map gives the coarse one, padding gives the fine one back
    waves = [((1, 0, 2), 0.3), ((-3, 2, 1), 1.1), ((0, -4, -2), 2.0)]

    def grid_map(n):
        z = np.arange(n) / n
        zz, yy, xx = np.meshgrid(z, z, z, indexing="ij")
        out = np.full((n, n, n), 0.7)
        for (a, b, c), phase in waves:
            out += np.cos(2 * np.pi * (a * zz + b * yy + c * xx) + phase)
        return out

    fine, coarse = grid_map(30), grid_map(12)
    cropped = fourier.fourier_resize(fine, 12)
    assert cropped.shape == (12, 12, 12) and cropped.dtype == np.float32
    np.testing.assert_allclose(cropped, coarse, atol=2e-5)
    np.testing.assert_allclose(fourier.fourier_resize(cropped, 30), fine, atol=2e-5)
    assert float(cropped.mean()) == pytest.approx(0.7, abs=1e-6)


def test_fourier_resize_drops_what_the_small_grid_cannot_hold(rng):
    volume = rng.standard_normal((24, 24, 24))
    round_trip = fourier.fourier_resize(fourier.fourier_resize(volume, 10), 24)
    spectrum = np.fft.fftn(round_trip)
    k = np.fft.fftfreq(24, 1 / 24)
    outside = (np.abs(k)[:, None, None] >= 5) | (np.abs(k)[None, :, None] >= 5)
    outside = outside | (np.abs(k)[None, None, :] >= 5)
    assert np.abs(spectrum[outside]).max() < 1e-3
    kept = np.fft.fftn(volume)[~outside]
    np.testing.assert_allclose(spectrum[~outside], kept, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="even"):
        fourier.fourier_resize(volume, 11)
