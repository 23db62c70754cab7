"""``spisonet.py demo`` answers SIGTERM with one line and exit code 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_sigterm_during_training_is_one_line_and_exit_143(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bin" / "spisonet.py"), "demo", "--output_dir", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 240
        log = out / "demo.log"
        while time.monotonic() < deadline:  # wait until training runs
            if log.is_file() and "noise2noise" in log.read_text():
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the demo did not reach training in time")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        assert time.monotonic() - sent < 30
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, output
    lines = [line for line in output.splitlines() if "interrupted by SIGTERM" in line]
    assert len(lines) == 1, output
    assert not (out / "demo_report.json").exists()
    assert "Traceback" not in output
