"""spisonet.py reconstruct: outputs, report, rejection."""

from __future__ import annotations

from pathlib import Path

from .helpers import tiny_case


def test_cli_reconstruct_writes_outputs_and_rejects_bad_fsc3d(tmp_path):
    from spIsoNet.cli.main import main
    from spIsoNet.io import write_map

    h1, h2, fsc = tiny_case()
    for name, data in (("emd_half_1.mrc", h1), ("emd_half_2.mrc", h2), ("fsc.mrc", fsc)):
        write_map(tmp_path / name, data, 2.0)
    write_map(tmp_path / "small.mrc", fsc[:16, :16, :16], 2.0)
    common = [
        str(tmp_path / "emd_half_1.mrc"),
        str(tmp_path / "emd_half_2.mrc"),
        "--limit_res",
        "5",
        "--epochs",
        "1",
        "--n_subvolume",
        "4",
        "--cube_size",
        "16",
        "--predict_crop_size",
        "16",
        "--net_width",
        "4",
        "--net_depth",
        "1",
        "--batch_size",
        "4",
        "--acc_batches",
        "1",
        "--seed",
        "1",
        "--device",
        "cpu",
        "--ncpus",
        "1",
    ]
    out = tmp_path / "out"
    bad = main(
        [
            "reconstruct",
            *common,
            "--aniso_file",
            str(tmp_path / "small.mrc"),
            "--output_dir",
            str(out),
        ]
    )
    assert bad == 2
    code = main(
        [
            "reconstruct",
            *common,
            "--aniso_file",
            str(tmp_path / "fsc.mrc"),
            "--output_dir",
            str(out),
            "--skip_metrics",
        ]
    )
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "corrected_emd_half_1.mrc",
        "corrected_emd_half_1_filtered.mrc",
        "corrected_emd_half_2.mrc",
        "corrected_emd_half_2_filtered.mrc",
        "emd_half.pt",
        "loss.png",
        "report.json",
    } <= names
    import json

    report = json.loads((out / "report.json").read_text())
    assert report["seed"] == 1 and report["settings"]["cube_size"] == 16
    assert Path(report["inputs"]["half_maps"][0]).name == "emd_half_1.mrc"


# --------------------------------------------------------------------------------------------
# failures, limits and interruption

import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

LAUNCHER = Path(__file__).resolve().parents[2] / "bin" / "spisonet.py"
TINY_ARGS = [
    "--epochs", "1", "--n_subvolume", "4", "--cube_size", "16", "--predict_crop_size", "16",
    "--net_width", "4", "--net_depth", "1", "--batch_size", "4", "--acc_batches", "1",
    "--seed", "1", "--device", "cpu", "--ncpus", "1", "--skip_metrics",
]  # fmt: skip


@pytest.fixture
def maps(tmp_path):
    from spIsoNet.io import write_map

    h1, h2, fsc = tiny_case()
    for name, data in (("h_1.mrc", h1), ("h_2.mrc", h2), ("fsc.mrc", fsc)):
        write_map(tmp_path / name, data, 2.0)
    return [str(tmp_path / "h_1.mrc"), str(tmp_path / "h_2.mrc")]


def _main(*argv):
    from spIsoNet.cli.main import main

    return main(["reconstruct", *map(str, argv)])


def _one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_limit_res_coarser_than_the_box_is_rejected_at_once(tmp_path, maps, capsys):
    out = tmp_path / "out"
    started = time.perf_counter()
    code = _main(*maps, *TINY_ARGS, "--limit_res", "1000", "--output_dir", out)
    assert code == 2 and time.perf_counter() - started < 30
    line = _one_error_line(capsys)
    assert "--limit_res 1000 Å is coarser than the box (64.0 Å)" in line
    assert not out.exists()  # no empty output folder, no 0-byte log


def test_a_rejected_run_leaves_no_folder_and_an_existing_one_untouched(tmp_path, maps, capsys):
    out = tmp_path / "new" / "out"
    assert _main(maps[0], *TINY_ARGS, "--output_dir", out) == 2  # single map needs an FSC3D
    assert "single-map mode needs --aniso_file" in _one_error_line(capsys)
    assert not out.parent.exists()  # nor the parent folder the run created
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert _main(*maps, *TINY_ARGS, "--epochs", "0", "--output_dir", kept) == 2
    assert "--epochs 0 needs --pretrained_model" in _one_error_line(capsys)
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
    assert _main(*maps, *TINY_ARGS, "--cube_size", "13", "--output_dir", out) == 2
    assert "--cube_size 13: must be a multiple of 2^net_depth = 2" in _one_error_line(capsys)
    assert not out.exists()


def test_limit_res_finer_than_nyquist_records_nyquist(tmp_path, maps, capsys):
    out = tmp_path / "out"
    fsc = str(Path(maps[0]).with_name("fsc.mrc"))
    code = _main(*maps, *TINY_ARGS, "--aniso_file", fsc, "--limit_res", "1", "--output_dir", out)
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["limit_res"] == 4.0  # Nyquist at 2 Å/voxel, the value used
    assert "beyond Nyquist" in (out / "reconstruct.log").read_text()
    assert report["settings"]["time_limit"] is None
    assert report["settings"]["show_progress"] is False  # no terminal: log lines, no bars


def test_time_limit_option(tmp_path, maps):
    out = tmp_path / "out"
    fsc = str(Path(maps[0]).with_name("fsc.mrc"))
    args = [*maps, *TINY_ARGS, "--aniso_file", fsc, "--limit_res", "5", "--output_dir", out]
    assert _main(*args, "--epochs", "4", "--time_limit", "1e-6") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["time_limit"] == 1e-6 and len(report["loss_history"]) == 1
    assert "time limit of 1e-06 s reached" in (out / "reconstruct.log").read_text()


def test_every_help_line_states_one_default():
    from spIsoNet.cli.main import build_parser

    parser = build_parser(only="reconstruct")
    sub = next(a for a in parser._actions if a.dest == "command").choices["reconstruct"]
    text = " ".join(sub.format_help().split())
    for action in sub._actions:
        if action.option_strings and action.help and action.dest != "help":
            helped = sub._get_formatter()._get_help_string(action) % vars(action)
            assert helped.count("(default") <= 1, helped
    assert "(default: None)" not in text
    from spIsoNet.cli.cmd_reconstruct import CLI_NAMES

    flags = {s for a in sub._actions for s in a.option_strings}
    assert set(CLI_NAMES.values()) <= flags


def test_sigterm_stops_within_seconds_keeps_the_checkpoint_and_resume_continues(tmp_path, maps):
    from spIsoNet.engine.checkpoint import load_checkpoint

    out = tmp_path / "out"
    fsc = str(Path(maps[0]).with_name("fsc.mrc"))
    common = [*maps, *TINY_ARGS, "--aniso_file", fsc, "--limit_res", "5", "--output_dir", out]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "reconstruct", *map(str, common), "--epochs", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    model = out / "h.pt"
    deadline = time.monotonic() + 180
    while not model.is_file() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert model.is_file(), run.communicate(timeout=60)
    time.sleep(0.5)
    sent = time.monotonic()
    run.send_signal(signal.SIGTERM)
    stdout, stderr = run.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert run.returncode == 143, stderr[-2000:]
    lines = [line for line in stdout.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and "interrupted by SIGTERM" in lines[0] and "--resume" in lines[0]
    assert "interrupted by SIGTERM" in (out / "reconstruct.log").read_text()
    epoch = load_checkpoint(model)["epoch"]
    assert epoch >= 1
    names = {p.name for p in out.iterdir()}
    assert not any(n.startswith("corrected_") or n.endswith(".tmp") for n in names), names
    assert "report.json" not in names
    assert _main(*common, "--epochs", epoch + 1, "--resume") == 0
    report = json.loads((out / "report.json").read_text())
    assert len(report["loss_history"]) == epoch + 1
    assert f"resuming {model} after epoch {epoch}" in (out / "reconstruct.log").read_text()


def test_a_run_stuck_in_one_long_operation_still_ends_on_sigterm(tmp_path):
    """The watchdog: the main thread never reaches a check (one long torch operation)."""
    code = (
        "import time, sys\n"
        "from spIsoNet.engine import interrupt\n"
        "def said(signum):\n"
        "    print('watchdog', signum, flush=True)\n"
        "with interrupt.handle_signals(on_timeout=said, grace=1.0):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(120)\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert run.stdout.readline().strip() == "ready"
    sent = time.monotonic()
    run.send_signal(signal.SIGTERM)
    stdout, stderr = run.communicate(timeout=30)
    assert run.returncode == 143 and time.monotonic() - sent < 10, stderr
    assert "watchdog 15" in stdout


def test_an_all_zero_half_map_is_one_line_and_nothing_written(tmp_path, maps, capsys):
    import numpy as np

    from spIsoNet.io import write_map

    zero = tmp_path / "zero.mrc"
    write_map(zero, np.zeros((32, 32, 32), np.float32), 2.0)
    out = tmp_path / "out"
    assert _main(maps[0], zero, *TINY_ARGS, "--output_dir", out) == 2
    line = _one_error_line(capsys)
    assert "zero.mrc" in line and "constant (all zeros)" in line
    assert not out.exists()


def test_keep_measured_false_gives_the_published_replacement(tmp_path, maps):
    import mrcfile
    import numpy as np

    results = {}
    for flag in ("True", "False"):
        out = tmp_path / flag
        assert _main(*maps, *TINY_ARGS, "--keep_measured", flag, "--output_dir", out) == 0
        with mrcfile.open(out / "corrected_h_1.mrc") as f:
            results[flag] = f.data.copy()
    assert not np.array_equal(results["True"], results["False"])
