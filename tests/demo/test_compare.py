"""Metrics against the ground truth (spIsoNet.demo.compare)."""

from __future__ import annotations

import numpy as np
import pytest

from spIsoNet import demo
from spIsoNet.demo.compare import MIN_SHELL
from spIsoNet.fsc3d import first_crossings


def truth_crossings(curves, threshold, min_shell=MIN_SHELL):
    """The crossing convention of the truth metrics (clipped at the first searched shell)."""
    return first_crossings(curves, threshold, min_shell=min_shell, clip_to_min_shell=True).shell


def test_first_crossings_interpolates_and_handles_no_crossing():
    shells = np.arange(11, dtype=np.float64)
    linear = 1.0 - shells / 10.0  # crosses 0.5 exactly at shell 5, 0.25 at 7.5
    curves = np.stack([linear, np.ones(11), np.where(shells < 4, 1.0, 0.0)])
    got = truth_crossings(curves, 0.5, min_shell=3)
    np.testing.assert_allclose(got, [5.0, 10.0, 3.5])
    np.testing.assert_allclose(truth_crossings(linear, 0.25), [7.5])
    # Dips in the first shells (few voxels per cone) are ignored.
    dip = linear.copy()
    dip[1] = 0.0
    np.testing.assert_allclose(truth_crossings(dip, 0.5), [5.0])
    np.testing.assert_allclose(truth_crossings(linear, 0.7, min_shell=5), [5.0])


def test_truth_metrics_of_truth_is_perfect_and_detects_smearing():
    from spIsoNet.simulate import phantom

    truth = phantom(32, 3.0, seed=2)
    perfect = demo.truth_metrics(truth, truth, 3.0, n_directions=32, with_sphericity=False)
    nyquist = 2 * 3.0
    assert perfect["dir_res_worst"] == pytest.approx(nyquist, rel=0.07)
    assert perfect["global_res"] == pytest.approx(nyquist, rel=0.07)
    # Remove high-z-frequency information: the worst direction becomes z, the best stays sharp.
    spectrum = np.fft.rfftn(truth)
    kz = np.abs(np.fft.fftfreq(32, 1 / 32))[:, None, None]
    kr = np.sqrt(np.fft.fftfreq(32, 1 / 32)[None, :, None] ** 2 + np.arange(17)[None, None, :] ** 2)
    spectrum *= ~((kz > 5) & (kz > kr))  # a missing double cone of 45° beyond shell 5 along z
    smeared = np.fft.irfftn(spectrum, s=truth.shape, axes=(0, 1, 2)).astype(np.float32)
    m = demo.truth_metrics(smeared, truth, 3.0, n_directions=64, with_sphericity=False)
    assert abs(m["worst_direction"][0]) > 0.9  # z
    equator = np.abs(m["directions"][:, 0]) < 0.3
    assert np.all(m["dir_res"][equator] < 1.1 * nyquist)
    assert m["dir_res_best"] == pytest.approx(nyquist, rel=0.07)
    assert m["dir_res_worst"] > 2.5 * m["dir_res_best"]
