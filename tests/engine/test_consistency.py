"""The data-consistency step keeps what the input measured well (spIsoNet.engine.consistency).

No network is trained here: "network outputs" of known quality stand in for it, on simulated
preferred-orientation and isotropic cases with a known truth, scored as the quality benchmark
scores maps (FSC = 0.5 to the truth of the average of the two halves, 20° cones).
"""

from __future__ import annotations

import numpy as np
import pytest

from spIsoNet import demo
from spIsoNet.engine.consistency import group_weights, keep_measured, measured_weight
from spIsoNet.fourier import combine_maps, fsc_curve, irfft3, lowpass, resolution_at, rfft3
from spIsoNet.simulate import OrientationModel, SimulationSettings, simulate_case

TOLERANCE = 0.02  # the bar: no more than 2 % worse than the input


def _case(isotropic: bool = False):
    orientation = (
        OrientationModel.isotropic(n_particles=6000, n_views=600)
        if isotropic
        else OrientationModel(n_particles=6000, n_views=600)
    )
    sim = SimulationSettings(box=40, voxel_size=2.5, seed=5, orientation=orientation)
    case = simulate_case(sim)
    fsc = fsc_curve(case.half1, case.half2, case.mask)
    limit = resolution_at(fsc, sim.box, case.voxel_size, 0.5).angstrom
    return case, float(limit)


def _score(maps, case) -> dict:
    return demo.truth_metrics(
        0.5 * (maps[0] + maps[1]),
        case.truth,
        case.voxel_size,
        mask=case.mask,
        n_directions=64,
        with_sphericity=False,
    )


def _recombined(network, case, limit):
    """What the engine's recombination makes of a given "network output" per half."""
    return [
        np.asarray(combine_maps(network(h), h, limit, case.voxel_size, mask=case.mask), np.float32)
        for h in (case.half1, case.half2)
    ]


def _worse(after: dict, before: dict, key: str) -> float:
    return (after[key] - before[key]) / before[key]


@pytest.fixture(scope="module")
def anisotropic():
    return _case()


def _bad_networks(voxel_size: float):
    rng = np.random.default_rng(0)
    return {
        "blurred": lambda h: lowpass(h, 12.0, voxel_size),
        "noisy": lambda h: h + h.std() * rng.standard_normal(h.shape).astype(np.float32),
        "empty": lambda h: np.zeros_like(h),
    }


@pytest.mark.parametrize("bad", ["blurred", "noisy", "empty"])
def test_a_bad_network_cannot_degrade_best_direction_or_global(anisotropic, bad):
    case, limit = anisotropic
    before = _score([case.half1, case.half2], case)
    raw = _recombined(_bad_networks(case.voxel_size)[bad], case, limit)
    kept, report = keep_measured(
        [case.half1, case.half2], raw, case.voxel_size, limit, mask=case.mask
    )
    after = _score(kept, case)
    assert _worse(after, before, "dir_res_best") <= TOLERANCE, (before, after)
    assert _worse(after, before, "global_res") <= TOLERANCE, (before, after)
    # without the step the same output is clearly harmful (the test can fail)
    if bad != "noisy":
        assert _worse(_score(raw, case), before, "global_res") > 0.1
    assert all(0.0 <= f <= 1.0 for f in report.network_fraction)


def test_isotropic_data_no_direction_gets_worse(tmp_path):
    case, limit = _case(isotropic=True)
    before = _score([case.half1, case.half2], case)
    for bad in _bad_networks(case.voxel_size).values():
        raw = _recombined(bad, case, limit)
        kept, _ = keep_measured(
            [case.half1, case.half2], raw, case.voxel_size, limit, mask=case.mask
        )
        after = _score(kept, case)
        worse = (after["dir_res"] - before["dir_res"]) / before["dir_res"]
        assert worse.max() <= TOLERANCE, worse.max()


def test_a_better_network_is_taken_where_the_data_are_poor(anisotropic):
    """An output that knows the truth in the missing directions improves the worst direction."""
    case, limit = anisotropic
    before = _score([case.half1, case.half2], case)
    n = case.truth.shape[0]
    truth_spectrum = rfft3(case.truth)

    def oracle(h):
        # the truth's phases and amplitudes scaled to the half's radial power: a near-perfect
        # "network" (noise-free), recombined and spectrum-matched like a real one
        return irfft3(truth_spectrum * (h.std() / case.truth.std()), n)

    raw = _recombined(oracle, case, limit)
    kept, report = keep_measured(
        [case.half1, case.half2], raw, case.voxel_size, limit, mask=case.mask
    )
    after = _score(kept, case)
    assert after["dir_res_worst"] <= 0.9 * before["dir_res_worst"], (before, after)
    assert _worse(after, before, "dir_res_best") <= TOLERANCE
    assert min(report.network_fraction) > 0.2


def test_group_weights_are_the_inverse_variance_blend_for_independent_errors():
    """Analytic optimum: with independent errors of variance a (input) and b (network), the
    blend best correlated with the truth (and so with the other half) is w = b / (a + b)."""
    rng = np.random.default_rng(0)
    n_per, variances = 20000, [(1.0, 0.25), (1.0, 1.0), (0.25, 1.0), (0.5, 4.0)]
    groups = np.repeat(np.arange(len(variances)), n_per)

    def noise(scale):
        return scale * (rng.standard_normal(groups.size) + 1j * rng.standard_normal(groups.size))

    truth = noise(1.0)
    a = np.array([v[0] for v in variances])[groups]
    b = np.array([v[1] for v in variances])[groups]
    half, network, other = truth + noise(np.sqrt(a)), truth + noise(np.sqrt(b)), truth + noise(1.0)
    w = group_weights([(half, network, other)], groups, len(variances))
    expected = [vb / (va + vb) for va, vb in variances]
    np.testing.assert_allclose(w, expected, atol=0.04)


def test_group_weights_keep_the_input_for_ties_tiny_groups_and_unused_components():
    rng = np.random.default_rng(1)
    size = 4000
    half = rng.standard_normal(size) + 1j * rng.standard_normal(size)
    other = half + rng.standard_normal(size)
    groups = np.zeros(size, dtype=int)
    groups[:10] = 1  # a group of 10 components: too few to estimate
    groups[10:20] = -1  # not used
    # a network output proportional to the half (a blur within a shell) changes no correlation
    w = group_weights([(half, 0.5 * half, other)], groups, 3)
    assert w[0] == 1.0 and w[1] == 1.0 and w[2] == 1.0
    # the same with a perfect network: taken in the large group, not in the tiny one
    w = group_weights([(half, other, other)], groups, 2)
    assert w[0] <= 0.1 and w[1] == 1.0


def test_measured_weight_is_the_clipped_fsc():
    f = np.array([1.2, 0.9, 0.05, 0.0, -0.5])
    np.testing.assert_allclose(measured_weight(f), np.clip(f, 0, 1))


def test_direction_groups_cover_the_band_by_shell_and_direction():
    from spIsoNet.engine.consistency import POOLED_SHELLS, direction_groups
    from spIsoNet.fourier import shell_index

    n = 48
    shells = shell_index(n, True, False)
    band = shells <= 20
    groups, n_groups = direction_groups(n, band)
    inside = band & (shells > 0)
    assert (groups[inside] >= 0).all() and (groups[inside] < n_groups).all()
    assert (groups[~inside] == -1).all()
    # one group never spans shells beyond a pooled run, and Friedel mates (kx = 0 plane) share one
    for g in np.unique(groups[inside]):
        spanned = np.unique(shells[groups == g])
        assert spanned.max() - spanned.min() < POOLED_SHELLS
    k = np.rint(np.fft.fftfreq(n) * n).astype(int)
    a, b = 3, 5  # (kz, ky, 0) and (-kz, -ky, 0)
    assert groups[a, b, 0] == groups[k.tolist().index(-k[a]), k.tolist().index(-k[b]), 0]
    # the high shells are split into direction cells of about GROUP_SIZE components
    counts = np.bincount(groups[inside & (shells >= 15)])
    counts = counts[counts > 0]
    assert counts.min() >= 16 and np.median(counts) <= 200
