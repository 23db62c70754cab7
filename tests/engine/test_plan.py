"""The planning step: limit_res policy and range, batch, tiling, architecture, the plan record."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from spIsoNet.engine.plan import (
    DEFAULT_LIMIT_FSC,
    check_inputs,
    check_limit_res,
    default_limit_res,
    effective_batch_size,
    make_plan,
    network_config,
    prediction_tiling,
)
from spIsoNet.engine.settings import EngineSettings
from spIsoNet.errors import InputError

from .helpers import tiny_case, tiny_settings


def test_limit_res_outside_the_box_range():
    assert check_limit_res(5.0, 32, 2.0) == 5.0
    assert check_limit_res(64.0, 32, 2.0) == 64.0  # the box edge: shell 1 is inside
    with pytest.raises(InputError, match="^--limit_res 1000 Å is coarser than the box"):
        check_limit_res(1000.0, 32, 2.0, {"limit_res": "--limit_res"})
    with pytest.raises(InputError, match="must be positive"):
        check_limit_res(0.0, 32, 2.0)


def test_limit_res_finer_than_nyquist_is_warned_and_nyquist_is_used(caplog):
    with caplog.at_level(logging.WARNING, logger="spIsoNet"):
        assert check_limit_res(1.0, 32, 2.0) == 4.0
    assert "beyond Nyquist" in caplog.text


def test_default_limit_res_is_the_global_half_map_fsc_crossing():
    from spIsoNet.fourier import fsc_curve, resolution_at

    h1, h2, _ = tiny_case()
    expected = resolution_at(fsc_curve(h1, h2), 32, 2.0, threshold=0.143).angstrom
    assert DEFAULT_LIMIT_FSC == 0.143
    assert default_limit_res(h1, h2, 2.0, None) == pytest.approx(expected)
    assert default_limit_res(h1, None, 2.0, None) == 4.0  # single map: Nyquist, no lowpass


def test_batch_and_tiling_policies():
    s = EngineSettings(acc_batches=2).sized("gpu")
    assert effective_batch_size(s, 1) == 4
    assert effective_batch_size(s, 3) == 6
    assert effective_batch_size(EngineSettings(acc_batches=3), 1) == 3
    config = network_config(s, None)
    assert prediction_tiling(s, config) == (80, 20)
    small = EngineSettings(predict_crop_size=20, cube_size=16, net_depth=3)
    assert prediction_tiling(small, network_config(small, None)) == (24, 6)


def test_pretrained_architecture_must_fit_the_cubes():
    state = {"config": {"width": 4, "depth": 3, "n_conv": 1, "norm": "none"}}
    s = EngineSettings(cube_size=12, net_depth=2)
    with pytest.raises(InputError, match="^m.pt: its network \\(depth 3\\) needs --cube_size"):
        network_config(s, state, source="m.pt", names={"cube_size": "--cube_size"})
    with pytest.raises(InputError, match="m.pt: no valid network architecture"):
        network_config(s, {"config": {"widht": 4}}, source="m.pt")
    assert network_config(EngineSettings(cube_size=16), state).width == 4


def test_check_inputs_names_the_caller_files():
    h1, h2, fsc = tiny_case()
    kw = dict(mask=None, reference=None, settings=tiny_settings(), world=1, has_pretrained=False)
    with pytest.raises(InputError, match="^--aniso_file f.mrc: FSC3D shape"):
        check_inputs(
            h1, h2, 2.0, fsc3d_volume=fsc[:16], names={"fsc3d_volume": "--aniso_file f.mrc"}, **kw
        )
    with pytest.raises(InputError, match="single-map mode needs --aniso_file"):
        check_inputs(h1, None, 2.0, fsc3d_volume=None, **kw)


def test_plan_record(tmp_path):
    h1, h2, fsc = tiny_case()
    s = tiny_settings()
    kw = dict(
        fsc3d_volume=fsc,
        mask=None,
        reference=None,
        ref_resolution=10.0,
        settings=s,
        config=network_config(s, None),
        world=1,
        output_dir=str(tmp_path),
        pretrained=None,
        model_name="m",
    )
    plan = make_plan(h1, h2, 2.0, limit_res=1.0, **kw)
    assert plan.limit_res == 4.0 and plan.work.extra["limit_res"] == 4.0  # Nyquist recorded
    assert [job.name for job in plan.work.jobs] == ["m"] and plan.work.jobs[0].predict == (0, 1)
    assert plan.work.corners.shape == (s.n_subvolume, 3)
    assert "noise2noise" in plan.describe("cpu")
    independent = make_plan(
        h1, h2, 2.0, limit_res=5.0, **{**kw, "settings": s.replace(independent=True)}
    )
    assert [job.name for job in independent.work.jobs] == ["m_half1", "m_half2"]
    with pytest.raises(ValueError, match="seed"):
        make_plan(h1, h2, 2.0, limit_res=5.0, **{**kw, "settings": s.replace(seed=None)})
    assert np.isfinite(plan.work.weight_rfft).all()
