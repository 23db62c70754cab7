"""benchmarks/gpu_check.py works before a GPU is at hand: its CPU dry run passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _dry_run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    report = tmp_path / "gpu_check.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--json", str(report), *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result, json.loads(report.read_text())


def test_cpu_dry_run_in_process_checks(tmp_path):
    result, report = _dry_run(tmp_path, "--quick")
    checks = {row["check"]: row for row in report["results"]}
    for name in ("train fp32", "train AMP bf16", "train AMP fp16", "train acc_batches=2 AMP"):
        assert checks[name]["status"] == "ok" and checks[name]["samples_per_s"] > 0, name
    for name in ("predict fp32", "predict AMP"):
        assert checks[name]["status"] == "ok" and checks[name]["tiles_per_s"] > 0, name
    assert "GPU check passed on cpu" in result.stdout
    assert "FAIL" not in result.stdout


@pytest.mark.slow
def test_cpu_dry_run_with_spawned_ddp_and_torchrun(tmp_path):
    _, report = _dry_run(tmp_path)
    checks = {row["check"]: row for row in report["results"]}
    assert checks["spawned DDP gloo, 2 CPU procs"]["status"] == "ok"
    assert checks["torchrun --nproc_per_node 1"]["status"] == "ok"


def test_a_failing_check_fails_loudly(tmp_path):
    """A broken engine call: FAIL line naming the check, the others still run, exit 1."""
    code = (
        "import sys; sys.argv = ['gpu_check', '--device', 'cpu', '--quick']\n"
        f"sys.path.insert(0, {str(SCRIPT.parent)!r})\n"
        "import gpu_check\n"
        "real = gpu_check.Checker.settings\n"
        "def settings(self, **kw):\n"
        "    if kw.get('acc_batches') == 2:\n"
        "        kw['acc_batches'] = 3  # batch 2 is not a multiple of 3: the engine refuses\n"
        "    return real(self, **kw)\n"
        "gpu_check.Checker.settings = settings\n"
        "sys.exit(gpu_check.main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL train acc_batches=2 AMP:" in result.stdout
    assert "ok   predict fp32" in result.stdout  # later checks still ran
    assert "GPU check FAILED (1)" in result.stdout
