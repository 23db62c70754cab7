"""Map tools on the command line: whitening, combine_map, lowpass, fsc; errors → exit 2."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from spIsoNet import fourier
from spIsoNet.cli.main import main
from spIsoNet.io import read_map, write_map

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def maps(tmp_path, rng):
    n = 32
    signal = fourier.lowpass(rng.standard_normal((n, n, n)).astype(np.float32), 6.0, 1.5)
    paths = {}
    for name in ("h1", "h2"):
        data = signal + 0.2 * rng.standard_normal((n, n, n)).astype(np.float32)
        paths[name] = str(write_map(tmp_path / f"{name}.mrc", data, 1.5))
    radius = np.sqrt(((np.indices((n, n, n)) - n // 2) ** 2).sum(0))
    paths["mask"] = str(write_map(tmp_path / "mask.mrc", np.clip(12 - radius, 0, 1), 1.5))
    return paths


def test_whitening_cli_writes_map_with_voxel_size(tmp_path, maps):
    out = tmp_path / "w.mrc"
    code = main(
        [
            "whitening",
            maps["h1"],
            "-o",
            str(out),
            "--mask",
            maps["mask"],
            "--high_res",
            "4",
            "--low_res",
            "10",
        ]
    )
    assert code == 0
    result = read_map(out)
    assert result.voxel_size == pytest.approx(1.5)
    expected = fourier.whiten(
        read_map(maps["h1"]).data, 1.5, 10.0, 4.0, read_map(maps["mask"]).data
    )
    np.testing.assert_allclose(result.data, expected, atol=1e-5)


def test_combine_map_cli_published_arguments(tmp_path, maps):
    out = tmp_path / "c.mrc"
    code = main(["combine_map", maps["h1"], maps["h2"], str(out), "6", "--mask_file", maps["mask"]])
    assert code == 0
    assert read_map(out).data.shape == (32, 32, 32)


def test_lowpass_and_fsc_cli(tmp_path, maps, capsys):
    out = tmp_path / "lp.mrc"
    assert main(["lowpass", maps["h1"], str(out), "8"]) == 0
    spectrum = fourier.rfft3(read_map(out).data)
    assert np.abs(spectrum[fourier.frequency_radius(32) > 8]).max() < 1e-3
    report = tmp_path / "fsc.json"
    plot = tmp_path / "fsc.png"
    code = main(
        [
            "fsc",
            maps["h1"],
            maps["h2"],
            "--mask",
            maps["mask"],
            "--json",
            str(report),
            "--plot",
            str(plot),
        ]
    )
    assert code == 0
    summary = json.loads(report.read_text())
    assert 4.5 <= summary["unmasked_res_0.143"] <= 7.5  # signal edge: shells 6.5-9.5
    assert plot.stat().st_size > 1000
    assert "FSC=0.143" in capsys.readouterr().out


@pytest.mark.parametrize(
    "problem",
    ["missing", "not_mrc", "shape", "voxel", "nan"],
)
def test_bad_inputs_exit_2_with_one_line(tmp_path, maps, problem):
    other = tmp_path / "other.mrc"
    if problem == "not_mrc":
        other.write_text("hello")
    elif problem == "shape":
        write_map(other, np.zeros((16, 16, 16)), 1.5)
    elif problem == "voxel":
        write_map(other, np.ones((32, 32, 32)), 1.7)
    elif problem == "nan":
        with mrcfile.new(other) as mrc:
            mrc.set_data(np.full((32, 32, 32), np.inf, dtype=np.float32))
            mrc.voxel_size = 1.5
    out = tmp_path / "out.mrc"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bin" / "spisonet.py"),
            "combine_map",
            maps["h1"],
            str(other),
            str(out),
            "6",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(other) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_output_may_not_overwrite_an_input(maps):
    assert main(["lowpass", maps["h1"], maps["h1"], "8"]) == 2


def test_help_lists_commands_with_units():
    proc = subprocess.run(
        [sys.executable, str(REPO / "bin" / "spisonet.py"), "whitening", "-h"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0
    assert "(Å)" in proc.stdout and "default: 3.0" in proc.stdout


def test_environment_failures_are_one_line(tmp_path, maps, capsys, monkeypatch):
    out = tmp_path / "low.mrc"

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(src))

    monkeypatch.setattr(os, "replace", read_only)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["lowpass", maps["h1"], str(out), "8"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"spisonet.py lowpass: error: {out}: read-only file system", err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_fsc_outputs_as_a_set_and_folder_checks(tmp_path, maps, capsys, monkeypatch):
    import spIsoNet.cli.cmd_fsc as cmd_fsc

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cmd_fsc, "_plot", disk_full)
    json_path, png_path = tmp_path / "f.json", tmp_path / "f.png"
    args = ["fsc", maps["h1"], maps["h2"], "--json", str(json_path), "--plot", str(png_path)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"spisonet.py fsc: error: {png_path}: no space left on the device (disk full)"]
    assert not json_path.exists() and not png_path.exists()
    assert not list(tmp_path.glob(".*tmp"))
    blocker = tmp_path / "plots"
    blocker.write_text("")
    assert main(["fsc", maps["h1"], maps["h2"], "--plot", str(blocker / "f.png")]) == 2
    assert "plots is a file, not a folder" in capsys.readouterr().err


def test_fsc_rejects_an_all_zero_half_map(tmp_path, maps, capsys):
    zero = write_map(tmp_path / "zero.mrc", np.zeros((32, 32, 32)), 1.5)
    assert main(["fsc", maps["h1"], str(zero)]) == 2
    err = capsys.readouterr().err.strip()
    assert "zero.mrc" in err and "constant (all zeros)" in err and len(err.splitlines()) == 1


def test_fsc_plot_with_mask_is_a_png(tmp_path, maps):
    png = tmp_path / "f.png"
    assert main(["fsc", maps["h1"], maps["h2"], "--mask", maps["mask"], "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_prints_versions_and_devices(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "spIsoNet" in out and "torch" in out and "scipy" in out and "mrcfile" in out
    assert "usable core" in out and ("cuda:0" in out or "CUDA: not available" in out)
