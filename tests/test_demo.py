"""``spisonet.py demo --quick`` end to end, and the demo's metric helpers."""

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

REPO = Path(__file__).resolve().parents[1]


def test_first_crossings_interpolates_and_handles_no_crossing():
    shells = np.arange(11, dtype=np.float64)
    linear = 1.0 - shells / 10.0  # crosses 0.5 exactly at shell 5, 0.25 at 7.5
    curves = np.stack([linear, np.ones(11), np.where(shells < 4, 1.0, 0.0)])
    got = demo.first_crossings(curves, 0.5, min_shell=3)
    np.testing.assert_allclose(got, [5.0, 10.0, 3.5])
    np.testing.assert_allclose(demo.first_crossings(linear, 0.25), [7.5])
    # Dips in the first shells (few voxels per cone) are ignored.
    dip = linear.copy()
    dip[1] = 0.0
    np.testing.assert_allclose(demo.first_crossings(dip, 0.5), [5.0])
    np.testing.assert_allclose(demo.first_crossings(linear, 0.7, min_shell=5), [5.0])


def test_truth_metrics_of_truth_is_perfect_and_detects_smearing():
    from spIsoNet.simulate import phantom

    truth = phantom(32, 3.0, seed=2)
    perfect = demo.truth_metrics(truth, truth, 3.0, n_directions=32, with_sphericity=False)
    nyquist = 2 * 3.0
    assert perfect["dir_res_worst"] == pytest.approx(nyquist, rel=0.07)
    assert perfect["global_res"] == pytest.approx(nyquist, rel=0.07)
    # Remove high-z-frequency information: the worst direction becomes z, the best stays sharp.
    spectrum = np.fft.rfftn(truth)
    kz = np.abs(np.fft.fftfreq(32, 1 / 32))[:, None, None]
    kr = np.sqrt(np.fft.fftfreq(32, 1 / 32)[None, :, None] ** 2 + np.arange(17)[None, None, :] ** 2)
    spectrum *= ~((kz > 5) & (kz > kr))  # a missing double cone of 45° beyond shell 5 along z
    smeared = np.fft.irfftn(spectrum, s=truth.shape, axes=(0, 1, 2)).astype(np.float32)
    m = demo.truth_metrics(smeared, truth, 3.0, n_directions=64, with_sphericity=False)
    assert abs(m["worst_direction"][0]) > 0.9  # z
    equator = np.abs(m["directions"][:, 0]) < 0.3
    assert np.all(m["dir_res"][equator] < 1.1 * nyquist)
    assert m["dir_res_best"] == pytest.approx(nyquist, rel=0.07)
    assert m["dir_res_worst"] > 2.5 * m["dir_res_best"]


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
