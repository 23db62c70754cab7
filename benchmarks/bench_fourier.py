"""Time the Fourier toolkit's building blocks against plain numpy FFTs.

Prints, for each box size, the time of one numpy ``rfftn``, one torch ``rfft3``, a full FSC
curve (two FFTs + bincount shell sums), a low-pass and a combine_map.
"""

from __future__ import annotations

import time

import numpy as np

from spIsoNet import fourier


def _best_of(fn, repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def time_box(n: int, rng: np.random.Generator) -> list[float]:
    """Seconds for each operation on a random ``n³`` pair."""
    a = rng.standard_normal((n, n, n)).astype(np.float32)
    b = rng.standard_normal((n, n, n)).astype(np.float32)
    fourier.fsc_curve(a, b)  # warm the cached shell grids
    return [
        _best_of(lambda: np.fft.rfftn(a)),
        _best_of(lambda: fourier.rfft3(a)),
        _best_of(lambda: fourier.fsc_curve(a, b)),
        _best_of(lambda: fourier.lowpass(a, 4.0, 1.0)),
        _best_of(lambda: fourier.combine_maps(a, b, 4.0, 1.0), repeats=1),
    ]


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'box':>5} {'np.rfftn':>9} {'rfft3':>7} {'fsc':>7} {'lowpass':>8} {'combine':>8}  (s)")
    for n in (128, 256):
        row = time_box(n, rng)
        print(f"{n:>5} " + " ".join(f"{t:>8.3f}" for t in row))


if __name__ == "__main__":
    main()
