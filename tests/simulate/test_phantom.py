"""Ground truth of the simulator (spIsoNet.simulate.phantom)."""

from __future__ import annotations

import numpy as np

from spIsoNet import simulate as sim

from ._brute import BOX, VOXEL


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
