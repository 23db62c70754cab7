"""Time the Fourier toolkit's building blocks and the FFT libraries it chooses between.

Prints, for each box size, one ``rfftn`` of an ``n³`` float32 map with numpy, scipy.fft (all
usable cores) and torch (its intra-op threads), then the toolkit's ``rfft3`` (backend chosen by
:func:`spIsoNet.fourier.fft_backend`, printed), a full FSC curve (two FFTs + bincount shell
sums), a low-pass and a combine_map. torch is imported only after the scipy-only columns, so
they see the policy as the map tools see it (no torch in the process); its import time and
resident memory are printed at the end, the price a command would pay for using it.

Usage::

    python benchmarks/bench_fourier.py [--sizes 64 96 128 192 256]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.fft

from spIsoNet import fourier


def _rss_mb() -> float:
    """Resident memory now (MB, Linux /proc), NaN elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _best_of(fn, repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def time_box(n: int, rng: np.random.Generator) -> dict[str, float | str]:
    """Seconds for each operation on a random ``n³`` pair (torch not imported yet)."""
    a = rng.standard_normal((n, n, n)).astype(np.float32)
    b = rng.standard_normal((n, n, n)).astype(np.float32)
    fourier.fsc_curve(a, b)  # warm the cached shell grids
    workers = fourier.available_cores()
    return {
        "numpy": _best_of(lambda: np.fft.rfftn(a)),
        "scipy": _best_of(lambda: scipy.fft.rfftn(a, workers=workers)),
        "backend": fourier.fft_backend(n),
        "rfft3": _best_of(lambda: fourier.rfft3(a)),
        "fsc": _best_of(lambda: fourier.fsc_curve(a, b)),
        "lowpass": _best_of(lambda: fourier.lowpass(a, 4.0, 1.0)),
        "combine": _best_of(lambda: fourier.combine_maps(a, b, 4.0, 1.0), repeats=1),
    }


def main() -> None:
    """Time every box size of ``--sizes``, then torch, and print one row per box (seconds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 96, 128, 192, 256])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = {n: time_box(n, rng) for n in args.sizes}
    rss_before = _rss_mb()
    start = time.perf_counter()
    import torch

    torch_import = time.perf_counter() - start
    torch_mb = _rss_mb() - rss_before
    print(f"{fourier.available_cores()} cores; torch {torch.get_num_threads()} threads; seconds")
    print(f"{'box':>5} {'numpy':>8} {'scipy':>8} {'torch':>8} {'rfft3':>8} {'backend':>8} "
          f"{'fsc':>8} {'lowpass':>8} {'combine':>8}")  # fmt: skip
    for n, row in rows.items():
        a = rng.standard_normal((n, n, n)).astype(np.float32)
        tensor = torch.from_numpy(a)
        torch_s = _best_of(lambda t=tensor: torch.fft.rfftn(t).numpy())
        print(f"{n:>5} {row['numpy']:>8.4f} {row['scipy']:>8.4f} {torch_s:>8.4f} "
              f"{row['rfft3']:>8.4f} {row['backend']:>8} {row['fsc']:>8.4f} "
              f"{row['lowpass']:>8.4f} {row['combine']:>8.4f}")  # fmt: skip
    print(f"importing torch: {torch_import:.2f} s, +{torch_mb:.0f} MB resident")
    print(f"with torch imported, rfft3 uses torch from {fourier.TORCH_FFT_MIN_BOX}³ on")


if __name__ == "__main__":
    main()
