"""Benchmark of ``fsc3d``: wall time and peak memory next to four numpy FFTs of the same box.

Usage::

    python benchmarks/bench_fsc3d.py                 # 128³ and 256³
    python benchmarks/bench_fsc3d.py --sizes 128 256 400 --threads 2

Every measurement runs in a fresh subprocess so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which sees numpy and torch allocations, unlike
tracemalloc) belongs to that measurement alone. Measured per box size ``n``:

* ``4 numpy FFTs``: four ``numpy.fft.fftn`` of an ``n³`` float32 array (the speed yardstick);
* ``compute_fsc3d``: the FSC3D volume (10° cones, default limit = global FSC 0.143, soft mask)
  from two half-maps already in memory; the baseline RSS with the maps loaded is printed too;
* ``fsc3d command``: ``spisonet.py fsc3d h1 h2 mask`` end to end (read MRC, volume, write,
  report with masked-corrected FSC, 256 directional FSCs, sphericity volume at 20°, JSON, PNG).

Inputs are synthetic half-maps (random signal with a realistic SNR fall-off and a 30° noise cone
along z), written to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    """Current resident set size (MB) from /proc (Linux), NaN elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def make_inputs(n: int, folder: Path) -> None:
    """Write h1/h2/mask MRC files of a synthetic anisotropic pair (float32, n³)."""
    import torch

    sys.path.insert(0, str(REPO))
    from spIsoNet.io import write_map

    gen = torch.Generator().manual_seed(n)
    kz = torch.fft.fftfreq(n) * n
    kx = torch.arange(n // 2 + 1, dtype=torch.float32)
    r = torch.sqrt(kz[:, None, None] ** 2 + kz[None, :, None] ** 2 + kx[None, None, :] ** 2)
    cone = (kz[:, None, None].abs() >= 0.866 * r) & (r > 0)
    amplitude = torch.exp(-((r / (0.35 * n)) ** 2))
    sigma = 0.01 * torch.exp(12.0 * r / n)

    def noise():
        return torch.complex(
            torch.randn(r.shape, generator=gen), torch.randn(r.shape, generator=gen)
        )

    signal = noise() * amplitude
    for name in ("h1", "h2"):
        spectrum = torch.where(cone, torch.sqrt(amplitude**2 + sigma**2) * noise(),
                               signal + sigma * noise())  # fmt: skip
        half = torch.fft.irfftn(spectrum, s=(n, n, n), dim=(0, 1, 2)).numpy()
        write_map(folder / f"{name}.mrc", half, 1.0)
        del spectrum, half
    k = np.arange(n, dtype=np.float32) - n // 2
    radius = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    mask = np.clip((0.42 * n - radius) / 6.0, 0.0, 1.0).astype(np.float32)
    write_map(folder / "mask.mrc", mask, 1.0)


def worker(mode: str, n: int, folder: Path, threads: int) -> dict:
    """One measurement in this (fresh) process."""
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(threads)
    out: dict = {"mode": mode, "n": n}
    if mode == "numpy_fft":
        x = np.random.default_rng(0).standard_normal((n, n, n)).astype(np.float32)
        start = time.perf_counter()
        for _ in range(4):
            np.fft.fftn(x)
        out["seconds"] = time.perf_counter() - start
    elif mode == "compute":
        from spIsoNet.fsc3d import compute_fsc3d
        from spIsoNet.io import read_map

        h1 = read_map(folder / "h1.mrc").data
        h2 = read_map(folder / "h2.mrc").data
        mask = read_map(folder / "mask.mrc").data
        out["baseline_mb"] = _rss_mb()
        start = time.perf_counter()
        result = compute_fsc3d(h1, h2, 1.0, mask=mask, n_threads=threads)
        out["seconds"] = time.perf_counter() - start
        out["limit_res"] = result.limit_res
        out["limit_shell"] = result.limit_shell
    elif mode == "command":
        from spIsoNet.cli.main import main

        args = ["fsc3d", str(folder / "h1.mrc"), str(folder / "h2.mrc"), str(folder / "mask.mrc"),
                "-o", str(folder / "FSC3D.mrc"), "--ncpus", str(threads)]  # fmt: skip
        start = time.perf_counter()
        with open(os.devnull, "w") as devnull:
            stdout, sys.stdout = sys.stdout, devnull
            try:
                code = main(args)
            finally:
                sys.stdout = stdout
        out["seconds"] = time.perf_counter() - start
        out["exit_code"] = code
    out["peak_mb"] = _peak_mb()
    return out


def _run(mode: str, n: int, folder: Path, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--n", str(n), "--folder", str(folder),
           "--threads", str(threads)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} {n}³ failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-command", action="store_true", help="skip the end-to-end command")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "inputs":
            make_inputs(args.n, Path(args.folder))
            print(json.dumps({"mode": "inputs", "peak_mb": _peak_mb()}))
        else:
            print(json.dumps(worker(args.worker, args.n, Path(args.folder), args.threads)))
        return 0

    print(f"machine: {_cpu_model()}, {os.cpu_count()} cores; threads {args.threads}; "
          f"python {platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    header = f"{'box':>5} {'4 numpy FFTs':>13} {'compute_fsc3d':>14} {'ratio':>6} " \
        f"{'peak MB':>8} {'(maps loaded)':>13} {'command':>8} {'peak MB':>8}"  # fmt: skip
    print(header)
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench_fsc3d_{n}_") as tmp:
            folder = Path(tmp)
            _run("inputs", n, folder, args.threads)
            fft = _run("numpy_fft", n, folder, args.threads)
            comp = _run("compute", n, folder, args.threads)
            command = None if args.no_command else _run("command", n, folder, args.threads)
        ratio = comp["seconds"] / fft["seconds"]
        line = (f"{n:>4}³ {fft['seconds']:>12.2f}s {comp['seconds']:>13.2f}s {ratio:>6.2f} "
                f"{comp['peak_mb']:>8.0f} {comp['baseline_mb']:>13.0f}")  # fmt: skip
        if command is not None:
            line += f" {command['seconds']:>7.2f}s {command['peak_mb']:>8.0f}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
