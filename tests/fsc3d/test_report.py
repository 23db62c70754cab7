"""Anisotropy metrics of map pairs (spIsoNet.fsc3d.report.anisotropy_summary)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from spIsoNet import fourier
from spIsoNet.fsc3d import AnisotropyMetrics, anisotropy_summary, directional_fsc, first_crossings
from spIsoNet.fsc3d.directions import axis_angle_deg

from ._synthetic import synthetic_pair


def test_missing_cone_along_z_is_detected():
    n = 56
    h1, h2 = synthetic_pair(n, noise_cone_deg=30.0, seed=6)
    axes, curves = directional_fsc(h1, h2, directions=np.eye(3), cone_angle=20.0)
    res = first_crossings(curves, 0.143, min_shell=4).resolution(n, 1.0)
    res_z, res_y, res_x = res
    assert res_z > 3 * max(res_x, res_y), res
    summary = anisotropy_summary(h1, h2, 1.0)
    assert summary.sphericity < 0.8
    worst = np.asarray(summary.worst_direction)
    assert axis_angle_deg(worst, [1.0, 0.0, 0.0]) < 20.0  # worst axis is near z
    assert axis_angle_deg(np.asarray(summary.best_direction), [1.0, 0.0, 0.0]) > 30.0
    assert summary.dir_res_worst > 3 * summary.dir_res_best
    assert summary.cfar < 0.5


def test_isotropic_pair_is_spherical():
    n = 56
    h1, h2 = synthetic_pair(n, seed=8)
    summary = anisotropy_summary(h1, h2, 1.0)
    assert summary.sphericity > 0.95
    assert summary.dir_res_worst < 1.3 * summary.dir_res_best
    assert summary.cfar > 0.5
    expected = fourier.resolution_at(fourier.fsc_curve(h1, h2), n, 1.0, 0.143).angstrom
    assert summary.global_res_0143 == pytest.approx(expected, rel=1e-4)
    assert summary.dir_res_best <= summary.dir_res_mean <= summary.dir_res_worst
    keys = {
        "global_res_0143", "global_res_05", "sphericity", "dir_res_min", "dir_res_max",
        "dir_res_mean", "dir_res_std", "best_direction", "worst_direction", "cfar",
    }  # fmt: skip
    assert keys <= set(summary.to_json())  # the keys the JSON reports use


def test_summary_is_a_frozen_record_with_the_report_keys():
    h1, h2 = synthetic_pair(32, seed=3)
    summary = anisotropy_summary(h1, h2, 1.5, n_directions=40)
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.sphericity = 1.0
    data = summary.to_json()
    assert list(data) == [
        "global_res_0143", "global_res_05", "sphericity", "dir_res_min", "dir_res_max",
        "dir_res_mean", "dir_res_std", "best_direction", "worst_direction", "cfar",
        "anisotropy_ratio", "dir_not_crossed", "global_crossed_0143", "cone_angle", "n_directions",
    ]  # fmt: skip
    assert (
        data["dir_res_max"] == summary.dir_res_worst and data["dir_res_min"] == summary.dir_res_best
    )
    assert isinstance(data["worst_direction"], list) and len(data["worst_direction"]) == 3
    assert json.loads(json.dumps(data)) == data  # plain JSON types
    assert AnisotropyMetrics.from_json(data) == summary
    assert summary.n_directions == 40 and summary.anisotropy_ratio >= 1.0
