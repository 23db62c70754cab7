"""The anisotropy metrics record and its formatter (spIsoNet.fsc3d.metrics)."""

from __future__ import annotations

import math

from spIsoNet.fsc3d.metrics import ANISOTROPY_ROWS, AnisotropyMetrics, format_metrics


def record(**changes) -> AnisotropyMetrics:
    values = dict(
        global_res_0143=4.0, global_res_05=5.0, sphericity=0.8, dir_res_best=3.5,
        dir_res_worst=7.0, dir_res_mean=4.5, dir_res_std=0.9, best_direction=(0.0, 0.0, 1.0),
        worst_direction=(1.0, 0.0, 0.0), cfar=0.3, anisotropy_ratio=2.0, dir_not_crossed=0,
        global_crossed_0143=True, cone_angle=20.0, n_directions=100,
    )  # fmt: skip
    values.update(changes)
    return AnisotropyMetrics(**values)


def test_json_keys_are_the_historical_ones_and_round_trip():
    data = record().to_json()
    assert data["dir_res_min"] == 3.5 and data["dir_res_max"] == 7.0
    assert "dir_res_best" not in data and "dir_res_worst" not in data
    assert data["best_direction"] == [0.0, 0.0, 1.0]
    assert AnisotropyMetrics.from_json(data) == record()
    data["cfar"] = None  # what strict JSON stores for NaN
    assert math.isnan(AnisotropyMetrics.from_json(data).cfar)


def test_table_has_one_row_per_metric_and_the_change():
    lines = format_metrics({"input": record(), "corrected": record(dir_res_worst=5.6)})
    assert len(lines) == 1 + len(ANISOTROPY_ROWS)
    assert "input" in lines[0] and "corrected" in lines[0] and "change" in lines[0]
    worst = next(line for line in lines if line.startswith("worst direction"))
    assert "7.00" in worst and "5.60" in worst and "-20.0%" in worst


def test_table_shows_missing_and_non_finite_values_as_na():
    lines = format_metrics({"before": record(sphericity=math.nan), "after": None})
    sphericity = next(line for line in lines if line.startswith("sphericity"))
    assert sphericity.split()[1:] == ["n/a", "-"]  # not finite; not computed
    single = format_metrics({"only": record()})
    assert "change" not in single[0] and all("%" not in line for line in single)
