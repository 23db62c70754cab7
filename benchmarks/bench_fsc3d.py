"""Benchmark of ``spisonet.py fsc3d`` against the published tool and four numpy FFTs of the box.

Usage::

    python benchmarks/bench_fsc3d.py                      # 96³, 128³, 256³, 3 interleaved rounds
    python benchmarks/bench_fsc3d.py --sizes 96 192 256 --repeats 5 --threads 2

Measured per box size ``n``, each in its own fresh process, the three kinds interleaved round by
round (so that a change in the machine's load hits all of them alike); the median is printed:

* ``4 numpy FFTs``: four ``numpy.fft.fftn`` of an ``n³`` float32 array (the speed yardstick);
* ``command``: ``python bin/spisonet.py fsc3d h1 h2 mask --ncpus T`` end to end, as a user runs
  it (interpreter start, imports, reading, FSC3D volume, report with the mask-corrected FSC, 256
  directional FSCs, sphericity volume at 20°, JSON, PNG); wall time from start to exit, CPU time
  (user + system) and peak memory (``ru_maxrss``) of that child from ``os.wait4``. On a shared
  machine the wall time follows the load; the CPU time shows the work itself;
* ``FSC3D``: ``compute_fsc3d`` alone on maps already in memory (10° cones, default limit).

Printed next to them: the published spIsoNet's measured numbers from issue 10 (CPU build, same
2-core machine: 9.8 s and 133 MiB at 96³, 557 s at 192³, 392 s at 256³) and the targets
(96³: at most half the published wall time and 1.5× its peak; 256³: command ≤ 5× the numpy
yardstick and < 3 GB).

Inputs are synthetic half-maps (random signal with a realistic SNR fall-off and a 30° noise cone
along z) and a soft spherical mask, written to a temporary folder. Needs numpy, scipy, mrcfile.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: the published spIsoNet ``fsc3d`` measured side by side on the development machine (issue 10):
#: box → (wall seconds, peak MiB or None when not measured)
PUBLISHED = {96: (9.8, 133.0), 192: (557.0, None), 256: (392.0, None)}
#: targets of issue 10
TARGET_SPEEDUP_96 = 2.0  # published wall / ours at 96³
TARGET_PEAK_RATIO_96 = 1.5  # ours / published peak at 96³
TARGET_FFT_RATIO = 5.0  # command / four numpy FFTs at 256³
TARGET_PEAK_MB_256 = 3000.0


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _peak_mb(rusage) -> float:
    peak = rusage.ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def make_inputs(n: int, folder: Path) -> None:
    """Write h1/h2/mask MRC files of a synthetic anisotropic pair (float32, n³)."""
    import scipy.fft

    sys.path.insert(0, str(REPO))
    from spIsoNet.io import write_map

    rng = np.random.default_rng(n)
    kz = np.fft.fftfreq(n).astype(np.float32) * n
    kx = np.arange(n // 2 + 1, dtype=np.float32)
    r = np.sqrt(kz[:, None, None] ** 2 + kz[None, :, None] ** 2 + kx[None, None, :] ** 2)
    cone = (np.abs(kz)[:, None, None] >= 0.866 * r) & (r > 0)
    amplitude = np.exp(-((r / (0.35 * n)) ** 2))
    sigma = 0.01 * np.exp(12.0 * r / n)

    def noise():
        shape = r.shape
        out = np.empty(shape, np.complex64)
        out.real = rng.standard_normal(shape, dtype=np.float32)
        out.imag = rng.standard_normal(shape, dtype=np.float32)
        return out

    signal = noise() * amplitude
    for name in ("h1", "h2"):
        spectrum = np.where(cone, np.sqrt(amplitude**2 + sigma**2) * noise(),
                            signal + sigma * noise())  # fmt: skip
        half = scipy.fft.irfftn(spectrum, s=(n, n, n), axes=(0, 1, 2)).astype(np.float32)
        write_map(folder / f"{name}.mrc", half, 1.0)
        del spectrum, half
    k = np.arange(n, dtype=np.float32) - n // 2
    radius = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    mask = np.clip((0.42 * n - radius) / 6.0, 0.0, 1.0).astype(np.float32)
    write_map(folder / "mask.mrc", mask, 1.0)


def worker(mode: str, n: int, folder: Path, threads: int) -> dict:
    """One in-process measurement (this process is fresh)."""
    out: dict = {"mode": mode, "n": n}
    if mode == "numpy_fft":
        x = np.random.default_rng(0).standard_normal((n, n, n)).astype(np.float32)
        start = time.perf_counter()
        for _ in range(4):
            np.fft.fftn(x)
        out["seconds"] = time.perf_counter() - start
    elif mode == "compute":
        sys.path.insert(0, str(REPO))
        from spIsoNet.fsc3d import compute_fsc3d
        from spIsoNet.io import read_map

        h1 = read_map(folder / "h1.mrc").data
        h2 = read_map(folder / "h2.mrc").data
        mask = read_map(folder / "mask.mrc").data
        start = time.perf_counter()
        result = compute_fsc3d(h1, h2, 1.0, mask=mask, n_threads=threads)
        out["seconds"] = time.perf_counter() - start
        out["limit_shell"] = result.limit_shell
    out["peak_mb"] = _peak_mb(resource.getrusage(resource.RUSAGE_SELF))
    return out


def _run_worker(mode: str, n: int, folder: Path, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--n", str(n), "--folder", str(folder),
           "--threads", str(threads)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} {n}³ failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_command(n: int, folder: Path, threads: int) -> dict:
    """Run the user's command line in a child process; return its wall, CPU time and peak RSS."""
    cmd = [sys.executable, str(REPO / "bin" / "spisonet.py"), "fsc3d", "h1.mrc", "h2.mrc",
           "mask.mrc", "-o", "FSC3D.mrc", "--ncpus", str(threads)]  # fmt: skip
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        child = subprocess.Popen(cmd, cwd=folder, stdout=devnull, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"fsc3d {n}³ failed:\n{child.stderr.read().decode()}")
    child.stderr.close()
    cpu = usage.ru_utime + usage.ru_stime
    return {"mode": "command", "n": n, "seconds": seconds, "cpu": cpu, "peak_mb": _peak_mb(usage)}


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _median(rows: list[dict], key: str) -> float:
    return float(statistics.median(row[key] for row in rows))


def _fmt(value: float | None, spec: str, width: int) -> str:
    return f"{'—':>{width}}" if value is None else f"{value:{width}{spec}}"


def main() -> int:
    """Run the interleaved rounds per box size and print the table and the verdicts.

    With the hidden ``--worker`` option the process is one measurement instead (it writes the
    inputs or times one kind and prints its row as JSON on the last line).

    Returns
    -------
    int
        The exit status (0).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128, 256])
    parser.add_argument("--threads", type=int, default=_cores())
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "inputs":
            make_inputs(args.n, Path(args.folder))
            print(json.dumps({"mode": "inputs"}))
        else:
            print(json.dumps(worker(args.worker, args.n, Path(args.folder), args.threads)))
        return 0

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"machine: {_cpu_model()}, {os.cpu_count()} cores ({_cores()} usable); threads "
          f"{args.threads}; python {platform.python_version()}, numpy {np.__version__}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}; load average {load[0]:.2f}")  # fmt: skip
    print(f"medians of {args.repeats} interleaved rounds; published = spIsoNet (CPU) from issue 10")
    header = (f"{'box':>5} {'4 np FFTs':>10} {'FSC3D':>7} {'command':>8} {'cmd CPU':>8} "
              f"{'cmd/FFT':>8} {'peak MiB':>9} {'published':>10} {'pub/ours':>9} "
              f"{'peak/pub':>9}")  # fmt: skip
    print(header)
    verdicts = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench_fsc3d_{n}_") as tmp:
            folder = Path(tmp)
            _run_worker("inputs", n, folder, args.threads)
            rows: dict[str, list[dict]] = {"numpy_fft": [], "command": [], "compute": []}
            for _ in range(args.repeats):
                rows["numpy_fft"].append(_run_worker("numpy_fft", n, folder, args.threads))
                rows["command"].append(_run_command(n, folder, args.threads))
                rows["compute"].append(_run_worker("compute", n, folder, args.threads))
        fft = _median(rows["numpy_fft"], "seconds")
        command = _median(rows["command"], "seconds")
        cpu = _median(rows["command"], "cpu")
        peak = max(row["peak_mb"] for row in rows["command"])
        compute = _median(rows["compute"], "seconds")
        published, published_peak = PUBLISHED.get(n, (None, None))
        speedup = None if published is None else published / command
        peak_ratio = None if published_peak is None else peak / published_peak
        columns = [
            f"{n:>4}³",
            f"{fft:>9.2f}s",
            f"{compute:>6.2f}s",
            f"{command:>7.2f}s",
            f"{cpu:>7.2f}s",
            f"{command / fft:>8.2f}",
            f"{peak:>9.0f}",
            _fmt(published, ".1f", 9) + ("s" if published else " "),
            _fmt(speedup, ".2f", 9),
            _fmt(peak_ratio, ".2f", 9),
        ]
        print(" ".join(columns), flush=True)
        if n == 96:
            verdicts.append(f"96³: published/ours {speedup:.2f} (target ≥ {TARGET_SPEEDUP_96:g}), "
                            f"peak/published {peak_ratio:.2f} (target ≤ "
                            f"{TARGET_PEAK_RATIO_96:g})")  # fmt: skip
        if n == 256:
            verdicts.append(f"256³: command/4 numpy FFTs {command / fft:.2f} (target ≤ "
                            f"{TARGET_FFT_RATIO:g}), peak {peak:.0f} MiB (target < "
                            f"{TARGET_PEAK_MB_256:.0f})")  # fmt: skip
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"load average at the end {load[0]:.2f}")
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
