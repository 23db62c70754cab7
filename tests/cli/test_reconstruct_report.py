"""Run report of ``spisonet.py reconstruct`` (spIsoNet.cli.reconstruct_report)."""

from __future__ import annotations

import json

import numpy as np

from spIsoNet.cli.reconstruct_report import summary_lines, write_report
from spIsoNet.fsc3d.metrics import AnisotropyMetrics


def metrics(worst: float, cfar: float = 0.4) -> dict:
    return AnisotropyMetrics(
        global_res_0143=4.0, global_res_05=5.0, sphericity=0.8, dir_res_best=3.5,
        dir_res_worst=worst, dir_res_mean=4.5, dir_res_std=0.9, best_direction=(0.0, 0.0, 1.0),
        worst_direction=(1.0, 0.0, 0.0), cfar=cfar, anisotropy_ratio=worst / 3.5,
        dir_not_crossed=0, global_crossed_0143=True, cone_angle=20.0, n_directions=100,
    ).to_json()  # fmt: skip


def test_report_is_strict_json_with_nan_as_null(tmp_path):
    report = {
        "limit_res": np.float32(4.5),
        "loss_history": np.array([0.5, 0.25]),
        "metrics_input": metrics(7.0, cfar=float("nan")),
        "path": tmp_path,
    }
    path = write_report(tmp_path / "report.json", report)
    text = path.read_text()
    assert "NaN" not in text
    data = json.loads(text)
    assert data["metrics_input"]["cfar"] is None
    assert data["metrics_input"]["dir_res_max"] == 7.0
    assert data["loss_history"] == [0.5, 0.25] and data["path"] == str(tmp_path)


def test_summary_lines_show_before_and_after():
    report = {
        "device": "cpu", "seed": 3, "limit_res": 4.5, "timings": {"train": 12.0},
        "loss_history": [0.5, 0.25], "metrics_input": metrics(7.0),
        "metrics_corrected": metrics(5.6), "metrics_note": "halves share one network",
    }  # fmt: skip
    lines = summary_lines(report)
    assert lines[0].startswith("device: cpu; seed 3; limit_res 4.50")
    assert "train 12.0 s" in lines[1] and "last epoch 0.2500" in lines[2]
    worst = next(line for line in lines if line.startswith("worst direction"))
    assert "7.00" in worst and "5.60" in worst
    assert lines[-1] == "halves share one network"
    assert not any("metrics" in line for line in summary_lines({"timings": {}}))
