"""``spisonet.py fsc3d`` on the command line: outputs, report, published usage, bad inputs."""

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

from spIsoNet.cli.main import main
from spIsoNet.io import read_map, write_map

REPO = Path(__file__).resolve().parents[2]
N = 40
VOXEL = 1.5


def _pair(n: int, seed: int = 0):
    """Half-maps sharing a smooth random signal, with a noise cone along z (see test_fsc3d)."""
    rng = np.random.default_rng(seed)
    kz = np.fft.fftfreq(n) * n
    kx = np.arange(n // 2 + 1)
    z, y, x = np.meshgrid(kz, kz, kx, indexing="ij")
    r = np.sqrt(z**2 + y**2 + x**2)
    shape = r.shape
    amplitude = np.exp(-((r / (0.35 * n)) ** 2))
    sigma = 0.01 * np.exp(12.0 * r / n)
    signal = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * amplitude
    cone = (np.abs(z) >= np.cos(np.radians(30)) * r) & (r > 0)
    halves = []
    for _ in range(2):
        noise = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        spectrum = np.where(cone, np.sqrt(amplitude**2 + sigma**2) * noise, signal + sigma * noise)
        halves.append(np.fft.irfftn(spectrum, s=(n, n, n), axes=(0, 1, 2)).astype(np.float32))
    return halves


@pytest.fixture
def inputs(tmp_path):
    h1, h2 = _pair(N)
    radius = np.sqrt(((np.indices((N, N, N)) - N // 2) ** 2).sum(0))
    mask = np.clip((17.0 - radius) / 3.0, 0.0, 1.0).astype(np.float32)
    return {
        "h1": str(write_map(tmp_path / "h1.mrc", h1, VOXEL)),
        "h2": str(write_map(tmp_path / "h2.mrc", h2, VOXEL)),
        "mask": str(write_map(tmp_path / "mask.mrc", mask, VOXEL)),
    }


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_published_usage_writes_fsc3d_and_report(tmp_path, inputs, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["fsc3d", inputs["h1"], inputs["h2"], inputs["mask"], "--ncpus", "2",
                 "--limit_res", "4.0"])  # fmt: skip
    assert code == 0
    out = tmp_path / "FSC3D.mrc"
    assert out.is_file()
    volume = read_map(out)
    assert volume.voxel_size == pytest.approx(VOXEL)
    data = volume.data
    c = N // 2
    assert data.shape == (N, N, N) and data[c, c, c] == 1.0
    k = np.arange(N) - c
    radius = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    limit_shell = int(N * VOXEL / 4.0)
    assert np.all(data[np.floor(radius + 0.5) > limit_shell] == 0)
    assert np.count_nonzero(data[np.floor(radius + 0.5) <= limit_shell]) > 0.9 * np.count_nonzero(
        np.floor(radius + 0.5) <= limit_shell
    )
    # missing cone along z: the FSC3D is lower along z than along x at mid resolution
    r = limit_shell // 2 + 3
    assert data[c + r, c, c] < data[c, c, c + r] - 0.3
    printed = capsys.readouterr().out
    assert "Sphericity" in printed and "cFAR (SIMPLE-style)" in printed
    assert (tmp_path / "FSC3D_report.png").stat().st_size > 10_000
    report = json.loads((tmp_path / "FSC3D_report.json").read_text())
    _check_report(report)
    assert report["fsc3d"]["limit_res"] == pytest.approx(4.0)
    assert report["masked"] is True
    assert "masked_corrected" in report["global_fsc"]


REPORT_KEYS = (
    "inputs", "box", "voxel_size", "fsc3d", "global_fsc", "directional", "sphericity",
    "cfar_simple_style", "summary", "curves", "warnings", "outputs", "timings",
)  # fmt: skip
SUMMARY_KEYS = (
    "global_res_0143", "global_res_05", "sphericity", "dir_res_min", "dir_res_max",
    "dir_res_mean", "dir_res_std", "best_direction", "worst_direction", "cfar",
)  # fmt: skip


def _check_report(report: dict) -> None:
    for key in REPORT_KEYS:
        assert key in report, key
    summary = report["summary"]
    for key in SUMMARY_KEYS:
        assert key in summary, key
    d = report["directional"]
    res = np.array(d["resolutions"])
    dirs = np.array(d["directions_zyx"])
    assert d["n_directions"] == len(res) == len(dirs) >= 100
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0)
    assert d["res_min"] == pytest.approx(res.min()) == pytest.approx(summary["dir_res_min"])
    assert d["res_max"] == pytest.approx(res.max())
    assert d["res_mean"] == pytest.approx(res.mean())
    assert d["res_std"] == pytest.approx(res.std())
    assert d["res_min"] <= d["res_mean"] <= d["res_max"]
    np.testing.assert_allclose(d["best_direction_zyx"], dirs[np.argmin(res)])
    np.testing.assert_allclose(d["worst_direction_zyx"], dirs[np.argmax(res)])
    assert d["anisotropy_ratio"] == pytest.approx(res.max() / res.min())
    assert 0 < report["sphericity"]["value"] <= 1.05
    assert report["sphericity"]["value"] == pytest.approx(summary["sphericity"])
    assert 0 <= report["cfar_simple_style"]["value"] <= 1
    g = report["global_fsc"]["unmasked"]
    assert g["res_0143"] <= g["res_05"]
    n = report["box"]
    for name, curve in report["curves"].items():
        assert len(curve) == n // 2 + 1, name
    freq = report["curves"]["frequency_inv_angstrom"]
    assert freq[1] == pytest.approx(1 / (n * report["voxel_size"]))


def test_mask_option_output_name_and_cosine_method(tmp_path, inputs):
    out = tmp_path / "sub" / "aniso.mrc"
    out.parent.mkdir()
    code = main(["fsc3d", inputs["h1"], inputs["h2"], "--mask", inputs["mask"], "-o", str(out),
                 "--method", "cosine", "--cone_angle", "20", "--n_directions", "120"])  # fmt: skip
    assert code == 0
    report = json.loads((out.parent / "aniso_report.json").read_text())
    _check_report(report)
    assert report["fsc3d"]["method"] == "cosine"
    assert report["fsc3d"]["output_cone_angle"] == 20.0
    assert report["directional"]["n_directions"] == 120
    # default limit: global FSC 0.143 of the masked maps
    assert report["fsc3d"]["limit_res"] == pytest.approx(
        report["global_fsc"]["masked"]["res_0143"], rel=1e-6
    )
    assert (out.parent / "aniso_report.png").is_file()


def test_no_mask_no_report(tmp_path, inputs):
    out = tmp_path / "plain.mrc"
    assert main(["fsc3d", inputs["h1"], inputs["h2"], "-o", str(out), "--no_report"]) == 0
    assert out.is_file()
    assert not (tmp_path / "plain_report.json").exists()


def test_keep_highres_sets_outside_to_one(tmp_path, inputs):
    out = tmp_path / "k.mrc"
    code = main(["fsc3d", inputs["h1"], inputs["h2"], "-o", str(out), "--no_report",
                 "--limit_res", "5", "--keep_highres"])  # fmt: skip
    assert code == 0
    data = read_map(out).data
    c = N // 2
    k = np.arange(N) - c
    shells = np.floor(
        np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2) + 0.5
    )
    limit_shell = int(N * VOXEL / 5.0)
    assert np.all(data[shells > limit_shell] == 1.0)
    assert data[shells <= limit_shell].min() < 0.9


def test_voxel_size_zero_needs_override(tmp_path, inputs, capsys):
    for name in ("h1", "h2"):
        with mrcfile.open(inputs[name], mode="r+") as mrc:
            mrc.voxel_size = 0.0
    out = tmp_path / "o.mrc"
    assert main(["fsc3d", inputs["h1"], inputs["h2"], "-o", str(out), "--no_report"]) == 2
    line = _one_error_line(capsys)
    assert "voxel size" in line and "--voxel_size" in line
    code = main(["fsc3d", inputs["h1"], inputs["h2"], "-o", str(out), "--no_report",
                 "--voxel_size", "1.5"])  # fmt: skip
    assert code == 0
    assert read_map(out).voxel_size == pytest.approx(1.5)


def _write(path, data, voxel=VOXEL):
    return str(write_map(path, np.asarray(data, np.float32), voxel))


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "not found"),
        ("not_mrc", "not a readable MRC"),
        ("truncated", "not a readable MRC"),
        ("shape", "differs"),
        ("voxel", "voxel size"),
        ("nan", "NaN"),
        ("noncubic", "cubic"),
        ("mask_shape", "differs"),
        ("overwrite_input", "overwrite"),
        ("cone", "--cone_angle"),
        ("two_masks", "mask given twice"),
        ("limit_res", "--limit_res"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(tmp_path, inputs, capsys, case, expected):
    h1, h2, mask = inputs["h1"], inputs["h2"], inputs["mask"]
    out = str(tmp_path / "out.mrc")
    extra: list[str] = []
    bad = None
    if case == "missing":
        bad = str(tmp_path / "nope.mrc")
        h2 = bad
    elif case == "not_mrc":
        bad = str(tmp_path / "text.mrc")
        Path(bad).write_text("this is not a map\n" * 100)
        h2 = bad
    elif case == "truncated":
        bad = str(tmp_path / "cut.mrc")
        Path(bad).write_bytes(Path(h2).read_bytes()[:5000])
        h2 = bad
    elif case == "shape":
        bad = h2 = _write(tmp_path / "small.mrc", np.zeros((32, 32, 32)))
    elif case == "voxel":
        bad = h2 = _write(tmp_path / "v.mrc", read_map(h2).data, voxel=2.0)
    elif case == "nan":
        data = read_map(h2).data
        data[3, 4, 5] = np.nan
        bad = h2 = _write(tmp_path / "nan.mrc", data)
    elif case == "noncubic":
        bad = h1 = _write(tmp_path / "flat.mrc", np.zeros((N, N, N - 2)))
    elif case == "mask_shape":
        bad = mask = _write(tmp_path / "m.mrc", np.ones((32, 32, 32)))
    elif case == "overwrite_input":
        out = h1
    elif case == "cone":
        extra = ["--cone_angle", "95"]
    elif case == "two_masks":
        extra = ["--mask", h1]
    elif case == "limit_res":
        extra = ["--limit_res", "500"]  # coarser than the 60 Å box
    before = Path(inputs["h1"]).read_bytes()
    code = main(["fsc3d", h1, h2, mask, "-o", out, *extra])
    assert code == 2
    line = _one_error_line(capsys)
    assert expected in line, line
    if bad is not None:
        assert Path(bad).name in line, line
    assert Path(inputs["h1"]).read_bytes() == before  # inputs untouched
    assert not (tmp_path / "out.mrc").exists()
    assert not list(tmp_path.glob(".out.mrc*"))  # no temporary left behind


def test_launcher_subprocess_published_command(tmp_path, inputs):
    """The exact published command line through bin/spisonet.py (fresh interpreter)."""
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bin" / "spisonet.py"),
            "fsc3d",
            inputs["h1"],
            inputs["h2"],
            inputs["mask"],
            "--ncpus",
            "16",
            "--limit_res",
            "3.5",
        ],  # fmt: skip
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "FSC3D.mrc").is_file()
    assert (tmp_path / "FSC3D_report.json").is_file()
    assert "Directional resolution" in result.stdout


# ---------------------------------------------------------------------------------------------
# environment failures: one line, non-zero exit, nothing (half-)written, inputs untouched


def _leftovers(folder: Path, inputs: dict) -> list[str]:
    """Files in ``folder`` other than the inputs (outputs, temporaries)."""
    names = {Path(p).name for p in inputs.values()}
    return sorted(p.name for p in folder.iterdir() if p.name not in names)


def _fail_replace(code: int):
    real = os.replace

    def replace(src, dst, *a, **k):
        if str(dst).endswith(("FSC3D.mrc", ".json", ".png")):
            raise OSError(code, os.strerror(code), str(src))
        return real(src, dst, *a, **k)

    return replace


@pytest.mark.parametrize(
    "case, words",
    [
        ("read_only", "read-only file system"),
        ("disk_full_png", "no space left"),
        ("disk_full_map", "no space left"),
        ("permission", "permission denied"),
        ("memory", "out of memory"),
    ],
)
def test_environment_failures_one_line_nothing_left(
    tmp_path, inputs, capsys, monkeypatch, case, words
):
    import spIsoNet.fsc3d.conical as conical
    import spIsoNet.fsc3d.plots as plots
    import spIsoNet.io.atomic as atomic

    out = tmp_path / "FSC3D.mrc"
    named = out.name
    if case == "read_only":  # the renames at the end fail as on a read-only mount
        monkeypatch.setattr(os, "replace", _fail_replace(errno.EROFS))
    elif case == "disk_full_png":  # the last output of the set fails: the first two must go too

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(plots, "plot_report", full)
        named = "FSC3D_report.png"
    elif case == "disk_full_map":
        real_new = mrcfile.new

        def new(path, *args, **kwargs):
            handle = real_new(path, *args, **kwargs)
            handle.close()
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(mrcfile, "new", new)
    elif case == "permission":

        def mkstemp(prefix="", suffix="", dir=None):
            raise PermissionError(errno.EACCES, "Permission denied", f"{dir}/{prefix}x{suffix}")

        monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    elif case == "memory":

        def no_memory(*args, **kwargs):
            raise MemoryError

        monkeypatch.setattr(conical.ConicalFSC, "__init__", no_memory)
        named = None
    before = {k: Path(v).read_bytes() for k, v in inputs.items()}
    code = main(["fsc3d", inputs["h1"], inputs["h2"], inputs["mask"], "-o", str(out)])
    assert code == 1
    line = _one_error_line(capsys)
    assert words in line, line
    if named is not None:
        assert named in line and ".tmp" not in line, line
    assert {k: Path(v).read_bytes() for k, v in inputs.items()} == before
    assert _leftovers(tmp_path, inputs) == []


def test_failure_keeps_the_previous_run_outputs(tmp_path, inputs, capsys, monkeypatch):
    out = tmp_path / "FSC3D.mrc"
    assert main(["fsc3d", inputs["h1"], inputs["h2"], inputs["mask"], "-o", str(out)]) == 0
    names = ("FSC3D.mrc", "FSC3D_report.json", "FSC3D_report.png")
    previous = {name: (tmp_path / name).read_bytes() for name in names}
    capsys.readouterr()
    monkeypatch.setattr(os, "replace", _fail_replace(errno.ENOSPC))
    assert main(["fsc3d", inputs["h1"], inputs["h2"], "-o", str(out)]) == 1
    _one_error_line(capsys)
    assert {name: (tmp_path / name).read_bytes() for name in names} == previous
    assert not list(tmp_path.glob(".*tmp"))


def test_output_folder_is_a_file(tmp_path, inputs, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("a file, not a folder\n")
    code = main(["fsc3d", inputs["h1"], inputs["h2"], "-o", str(blocker / "FSC3D.mrc")])
    assert code == 2
    line = _one_error_line(capsys)
    assert "results is a file, not a folder" in line, line
    assert blocker.read_text() == "a file, not a folder\n"


@pytest.mark.parametrize("value", [0.0, 3.5])
def test_constant_half_map_is_rejected(tmp_path, inputs, capsys, value):
    flat = _write(tmp_path / "flat.mrc", np.full((N, N, N), value))
    code = main(["fsc3d", inputs["h1"], flat, inputs["mask"], "-o", str(tmp_path / "out.mrc")])
    assert code == 2
    line = _one_error_line(capsys)
    assert "flat.mrc" in line and "constant" in line, line
    assert not (tmp_path / "out.mrc").exists()


def test_help_answers_without_torch_and_states_one_default():
    code = (
        "import sys; from spIsoNet.cli.main import main\n"
        "for cmd in ([], ['fsc3d'], ['fsc'], ['lowpass'], ['whitening'], ['combine_map']):\n"
        "    try:\n"
        "        main([*cmd, '-h'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'torch' not in sys.modules, 'torch imported for -h'\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported for -h'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "(default: None)" not in text
    for line in text.split("\n  -"):
        assert line.count("default") <= 1, line
    assert "default: FSC3D.mrc" in text and "default: all cores available" in text


def test_fsc3d_command_does_not_import_torch(tmp_path, inputs):
    code = (
        "import sys; from spIsoNet.cli.main import main\n"
        f"assert main(['fsc3d', {inputs['h1']!r}, {inputs['h2']!r}, {inputs['mask']!r}, "
        f"'-o', {str(tmp_path / 'F.mrc')!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch imported by fsc3d'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


def test_gaussian_blur_equals_scipy_ndimage(rng):
    """sphericity's own blur (no scipy.ndimage import) is scipy's gaussian_filter."""
    import scipy.ndimage

    from spIsoNet.fsc3d.sphericity import gaussian_blur

    volume = (rng.random((21, 14, 17)) > 0.5).astype(np.float32)
    for sigma in (1.0, 1.6):
        expected = scipy.ndimage.gaussian_filter(volume, sigma)
        np.testing.assert_allclose(gaussian_blur(volume, sigma), expected, atol=2e-7)


def test_sigterm_removes_partial_outputs(tmp_path, inputs):
    """SIGTERM while the report is drawn: one line, exit 143, no output or temporary left."""
    import signal

    code = (
        "import sys, time\n"
        "import spIsoNet.fsc3d.plots as plots\n"
        "def slow(report, arrays, path):\n"
        "    open(path, 'wb').write(b'partial')\n"
        "    print('READY', flush=True)\n"
        "    time.sleep(60)\n"
        "plots.plot_report = slow\n"
        "from spIsoNet.cli.main import main\n"
        f"sys.exit(main(['fsc3d', {inputs['h1']!r}, {inputs['h2']!r}, "
        f"'-o', {str(tmp_path / 'FSC3D.mrc')!r}]))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in child.stdout:
            if line.strip() == "READY":
                break
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 143, err
    lines = [line for line in err.splitlines() if "spisonet.py" in line]
    assert lines == ["spisonet.py fsc3d: terminated (SIGTERM)"], err
    assert "Traceback" not in err
    assert _leftovers(tmp_path, inputs) == []


def test_limit_res_beyond_nyquist_is_recorded_as_nyquist(tmp_path, inputs, capsys):
    out = tmp_path / "FSC3D.mrc"
    assert main(["fsc3d", inputs["h1"], inputs["h2"], "-o", str(out), "--limit_res", "1"]) == 0
    assert "limited to 3.000 Å" in capsys.readouterr().out  # Nyquist of 1.5 Å voxels
    report = json.loads((tmp_path / "FSC3D_report.json").read_text())
    assert report["fsc3d"]["limit_res"] == pytest.approx(2 * VOXEL)


def test_report_figure_has_resolution_axis_thresholds_colour_bar_and_no_first_shell_dip(
    tmp_path, monkeypatch
):
    import spIsoNet.fsc3d.plots as plots
    from spIsoNet.fsc3d.report import min_reliable_shell

    n, voxel, cone = 40, 1.5, 20.0
    shells = n // 2 + 1
    freq = np.arange(shells) / (n * voxel)
    curve = np.clip(1.2 - np.arange(shells) / 12.0, -0.05, 1.0)
    directional = np.tile(curve, (16, 1))
    directional[:8, 1] = 0.0  # empty cones at shell 1: no measurement
    plane = np.zeros((n, n), np.float32)
    arrays = {
        "frequency": freq,
        "unmasked": curve,
        "corrected": curve,
        "directional": directional,
        "resolutions": np.full(16, 6.0),
        "slices": (plane, plane, plane),
    }
    report = {
        "voxel_size": voxel,
        "directional": {"cone_angle": cone, "res_min": 5.0, "res_max": 7.0},
        "sphericity": {"value": 0.9},
        "cfar_simple_style": {"value": 0.8},
    }
    figures = []
    real = plots.new_figure
    monkeypatch.setattr(plots, "new_figure", lambda size: figures.append(real(size)) or figures[-1])
    plots.plot_report(report, arrays, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    fig = figures[0]
    main_ax = fig.axes[0]
    mean = [line for line in main_ax.get_lines() if line.get_label() == "directional FSC mean"]
    assert mean and mean[0].get_xdata()[0] == pytest.approx(freq[min_reliable_shell(cone)])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "FSC = 0.143" in texts and "FSC = 0.5" in texts
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert "resolution (Å)" in labels and "spatial frequency (1/Å)" in labels
    assert any(ax.get_ylabel() == "conical FSC (FSC3D value)" for ax in fig.axes)  # colour bar
