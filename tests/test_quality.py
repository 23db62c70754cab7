"""End-to-end quality: the correction measurably improves the FSC to a known ground truth.

A simulated preferred-orientation case (spIsoNet.simulate: independent half-sets, 90 % of views
within 15° of z) is corrected with the engine (FSC3D from spIsoNet.fsc3d, noise2noise training,
recombination), and the directional FSC between the map (average of the two halves) and the truth
is compared before and after, at FSC = 0.5 in 20° cones. The fast test runs in CI; the slow one
is the README demo's case and targets.
"""

from __future__ import annotations

import numpy as np
import pytest

from spIsoNet import demo
from spIsoNet.simulate import OrientationModel, SimulationSettings, simulate_case


def _correct_and_measure(sim: SimulationSettings, tmp_path, n_directions: int, **engine):
    from spIsoNet.engine import EngineSettings, correct_maps
    from spIsoNet.fourier import fsc_curve, resolution_at
    from spIsoNet.fsc3d import compute_fsc3d

    case = simulate_case(sim)
    fsc = compute_fsc3d(case.half1, case.half2, case.voxel_size, mask=case.mask)
    # Correct inside the half-map FSC = 0.5 resolution, as the demo does.
    half_fsc = fsc_curve(case.half1, case.half2, case.mask)
    limit_res = resolution_at(half_fsc, sim.box, case.voxel_size, 0.5).angstrom
    # float32 everywhere: the thresholds were set on float32 runs, and a machine's bfloat16
    # support (auto) must not decide whether CI passes; bf16 is checked against float32 in
    # tests/engine (training, prediction) and on the benchmark (docs/benchmarks.md).
    engine.setdefault("mixed_precision", False)
    settings = EngineSettings(seed=sim.seed, show_progress=False, acc_batches=1, **engine)
    result = correct_maps(
        case.half1,
        case.half2,
        case.voxel_size,
        fsc3d_volume=fsc.volume,
        limit_res=limit_res,
        mask=case.mask,
        settings=settings,
        output_dir=tmp_path,
    )
    args = {"mask": case.mask, "n_directions": n_directions, "with_sphericity": False}
    before = demo.truth_metrics(
        0.5 * (case.half1 + case.half2), case.truth, case.voxel_size, **args
    )
    corrected = 0.5 * (result.corrected[0] + result.corrected[1])
    after = demo.truth_metrics(corrected, case.truth, case.voxel_size, **args)
    return case, result, before, after


def test_correction_improves_worst_direction_small(tmp_path):
    """Box 40, tiny network, ~1 minute: worst direction ≥ 5 % and mean ≥ 6 % better.

    Measured when written (2 cores): worst 20.0 → 18.0 Å (+10 %), mean +12.7 %, best unchanged.
    The input's worst direction sits at the metric's lowest counted shell (20 Å), so the mean
    over the 64 directions is asserted too. This checks what the network itself achieves (the
    recombined output, ``keep_measured=False``); the same output after the data-consistency
    step is checked below.
    """
    sim = SimulationSettings(
        box=40,
        voxel_size=2.5,
        seed=3,
        snr=0.004,
        orientation=OrientationModel(n_particles=8000, n_views=600),
    )
    case, result, before, after = _correct_and_measure(
        sim,
        tmp_path,
        n_directions=64,
        epochs=6,
        n_subvolume=64,
        cube_size=16,
        predict_crop_size=40,
        learning_rate=5e-4,
        net_width=8,
        net_depth=2,
        n_conv=2,
        batch_size=4,
        keep_measured=False,
    )
    gains = demo.improvement(before, after)
    # The input is clearly anisotropic, so there is something to correct.
    assert before["dir_res_worst"] > 1.4 * before["dir_res_best"]
    assert gains["worst_direction_gain"] >= 0.05, gains
    assert gains["mean_direction_gain"] >= 0.06, gains
    # ... and the correction does not pay for it with the well-resolved directions.
    assert gains["best_direction_gain"] >= -0.05, gains
    assert np.isfinite(result.corrected[0]).all() and result.loss_history

    # The default data-consistency step on the same output (what correct_maps returns by
    # default): never worse than the input by more than 2 % in the best direction and globally,
    # no direction on average worse, and still a gain on average over the directions
    # (measured when written: mean +6.2 %, global +1.3 %, worst unchanged at the 20 Å floor).
    from spIsoNet.engine.consistency import keep_measured

    kept, _ = keep_measured(
        [case.half1, case.half2],
        result.corrected,
        case.voxel_size,
        result.limit_res,
        mask=case.mask,
    )
    args = {"mask": case.mask, "n_directions": 64, "with_sphericity": False}
    consistent = demo.truth_metrics(0.5 * (kept[0] + kept[1]), case.truth, case.voxel_size, **args)
    gains = demo.improvement(before, consistent)
    assert gains["best_direction_gain"] >= -0.02, gains
    assert gains["global_gain"] >= -0.02, gains
    assert gains["worst_direction_gain"] >= 0.0, gains
    assert gains["mean_direction_gain"] >= 0.03, gains


@pytest.mark.slow
def test_demo_case_meets_targets(tmp_path, request):
    """The README demo (box 64, default settings): worst +15 %, best at most 3 % worse.

    About 10 minutes on 2 cores, so it runs only when selected with ``pytest -m slow``; CI runs
    the fast variant above.
    """
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long demo-size run: select it with -m slow")
    settings = demo.default_settings()
    report = demo.run_demo(tmp_path, settings, figures=False, show_progress=False)
    gains = report["improvement"]
    assert gains["worst_direction_gain"] >= 0.15, report["improvement"]
    assert gains["best_direction_gain"] >= -0.03, report["improvement"]
