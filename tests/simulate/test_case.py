"""Whole simulated cases: anisotropy, isotropy, reproducibility and the mask.

The directional FSC used here is a small brute-force conical FSC (tests/simulate/_brute.py), so
the simulator is checked independently of spIsoNet.fsc3d.
"""

from __future__ import annotations

import numpy as np

from spIsoNet import simulate as sim

from ._brute import BOX, conical_fsc, first_crossing, freqs


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
    r = np.linalg.norm(freqs(BOX), axis=-1)
    shell = np.abs(r - 12) < 0.5
    w = c.weights[0][shell]
    assert w.max() < 2.0 * w.mean() and w.min() > 0.3 * w.mean()


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
