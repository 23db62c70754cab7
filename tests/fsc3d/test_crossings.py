"""The crossing finder (spIsoNet.fsc3d.crossings) against resolution_at and a per-curve loop."""

from __future__ import annotations

import numpy as np
import pytest

from spIsoNet import fourier
from spIsoNet.fsc3d import first_crossings


def test_first_crossings_match_resolution_at(rng):
    curves = np.cumsum(-np.abs(rng.standard_normal((20, 33))) * 0.08, axis=1) + 1.0
    curves[3] = 0.9  # never crosses
    found = first_crossings(curves, 0.143)
    shells, res, crossed = found.shell, found.resolution(64, 1.1), found.crossed
    for i, curve in enumerate(curves):
        expected = fourier.resolution_at(curve, 64, 1.1, 0.143)
        assert res[i] == pytest.approx(expected.angstrom)
        assert shells[i] == pytest.approx(expected.shell)
        assert crossed[i] == expected.crossed


def _loop_reference(curve, threshold, min_shell, clip):
    """One curve at a time, straight from the definition."""
    for i in range(max(min_shell, 1), len(curve)):
        if curve[i] < threshold:
            upper = curve[i - 1]
            if i == 1:
                shell = 1.0
            elif upper < threshold:  # the shell before the first searched one is below too
                shell = float(max(i - 1, 1))
            else:
                shell = (i - 1) + (upper - threshold) / (upper - curve[i])
            return (max(shell, float(min_shell)) if clip else shell), True
    last = float(len(curve) - 1)
    return (max(last, float(min_shell)) if clip else last), False


@pytest.mark.parametrize("clip", [False, True])
def test_first_crossings_match_a_per_curve_loop_on_random_curves(rng, clip):
    for trial in range(60):
        d, n_shells = int(rng.integers(1, 12)), int(rng.integers(3, 40))
        if trial % 2:
            curves = rng.uniform(-0.2, 1.0, (d, n_shells))
        else:
            steps = -np.abs(rng.standard_normal((d, n_shells))) * rng.uniform(0.02, 0.3)
            curves = np.cumsum(steps, axis=1) + 1.0
        threshold = float(rng.choice([0.143, 0.5]))
        min_shell = int(rng.integers(1, 8))
        found = first_crossings(curves, threshold, min_shell=min_shell, clip_to_min_shell=clip)
        for i, curve in enumerate(curves):
            shell, crossed = _loop_reference(curve, threshold, min_shell, clip)
            assert found.shell[i] == pytest.approx(shell, rel=1e-12), (trial, i)
            assert bool(found.crossed[i]) == crossed


def test_first_crossings_clipped_for_truth_curves():
    """The demo's convention: a crossing at the first searched shell is reported there."""
    shells = np.arange(11, dtype=np.float64)
    linear = 1.0 - shells / 10.0  # crosses 0.5 exactly at shell 5, 0.25 at 7.5
    curves = np.stack([linear, np.ones(11), np.where(shells < 4, 1.0, 0.0)])
    got = first_crossings(curves, 0.5, min_shell=3, clip_to_min_shell=True).shell
    np.testing.assert_allclose(got, [5.0, 10.0, 3.5])
    dip = linear.copy()
    dip[1] = 0.0  # dips in the first shells (few voxels per cone) are ignored
    np.testing.assert_allclose(first_crossings(dip, 0.5, min_shell=5).shell, [5.0])
    np.testing.assert_allclose(
        first_crossings(linear, 0.7, min_shell=5, clip_to_min_shell=True).shell, [5.0]
    )
    unclipped = first_crossings(linear, 0.7, min_shell=5).shell
    np.testing.assert_allclose(unclipped, [4.0])  # interpolated between shells 4 and 5
