"""``spisonet.py demo --quick`` end to end, and the demo command's bad options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from spIsoNet import demo
from spIsoNet.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_cli_demo_bad_options_exit_2(tmp_path, capsys):
    assert main(["demo", "--output_dir", str(tmp_path / "d"), "--box", "8"]) == 2
    assert "--box" in capsys.readouterr().err
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["demo", "--output_dir", str(a_file)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["demo", "--output_dir", str(tmp_path / "d"), "--fraction_preferred", "2"]) == 2


def test_demo_quick_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bin" / "spisonet.py"), "demo", "--quick", "--output_dir",
         str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "worst direction resolution" in proc.stdout
    for name in (
        "truth.mrc", "half1.mrc", "half2.mrc", "mask.mrc", "FSC3D.mrc", "corrected_half1.mrc",
        "corrected_half2.mrc", "demo_slices.png", "demo_fsc.png", "demo_directional.png",
        "demo_report.json", "demo.log",
    ):  # fmt: skip
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / "demo_report.json").read_text())
    box = report["simulation"]["box"]
    voxel = report["simulation"]["voxel_size"]
    with mrcfile.open(out / "truth.mrc") as f:
        truth = f.data.copy()
        assert float(f.voxel_size.x) == pytest.approx(voxel)
    assert truth.shape == (box,) * 3
    halves = []
    for name in ("half1", "half2", "corrected_half1", "corrected_half2", "mask"):
        with mrcfile.open(out / f"{name}.mrc") as f:
            assert f.data.shape == (box,) * 3
            assert np.isfinite(f.data).all()
            halves.append(f.data.copy())
    mask = halves[4]
    # The report's numbers are those of the written maps.
    before = demo.truth_metrics(
        0.5 * (halves[0] + halves[1]), truth, voxel, mask=mask,
        n_directions=report["demo_settings"]["n_directions"], with_sphericity=False,
    )  # fmt: skip
    after = demo.truth_metrics(
        0.5 * (halves[2] + halves[3]), truth, voxel, mask=mask,
        n_directions=report["demo_settings"]["n_directions"], with_sphericity=False,
    )  # fmt: skip
    for key in ("dir_res_worst", "dir_res_best", "global_res"):
        assert report["before"][key] == pytest.approx(before[key], rel=1e-3)
        assert report["after"][key] == pytest.approx(after[key], rel=1e-3)
    gains = report["improvement"]
    expected = (before["dir_res_worst"] - after["dir_res_worst"]) / before["dir_res_worst"]
    assert gains["worst_direction_gain"] == pytest.approx(expected, rel=1e-3, abs=1e-4)
    assert report["targets"]["worst_direction_met"] == (gains["worst_direction_gain"] >= 0.15)
    # Views within 15° of z leave the k-space cap within ~75° of kz poorly sampled: the input's
    # worst direction lies in it (which one exactly is decided by noise).
    assert abs(report["before"]["worst_direction"][0]) > 0.5
    assert report["before"]["dir_res_worst"] > 1.3 * report["before"]["dir_res_best"]
    assert report["timings"]["total"] > 0 and report["engine"]["loss_history"]
