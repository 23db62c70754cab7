"""Time the reproduction of ``relion_external_reconstruct`` on synthetic arrays.

Usage: ``python benchmarks/bench_relion_reconstruct.py [N ...] [--repeat R]`` (default N = 64
128 256, padding 2, current size = N, RELION's 10 gridding iterations). Prints wall times of
:func:`spIsoNet.relion.reconstruction.reconstruct` in full float64 (RELION's double build, the
default) and with only the first 2 gridding iterations in float64, plus their max relative
difference.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from spIsoNet.relion.reconstruction import GridGeometry, fft_threads, reconstruct


def synthetic_call(n: int, padding: float = 2.0, seed: int = 0):
    """RELION-shaped arrays: weight falling off as 1/k², data = weight × random phases."""
    geom = GridGeometry.from_call(n, n, padding)
    rng = np.random.default_rng(seed)
    pf = geom.grid_file
    k = np.fft.fftfreq(pf, 1.0 / pf)
    kx = np.arange(pf // 2 + 1)
    r2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + kx[None, None, :] ** 2
    inside = r2 < geom.R**2
    weight = np.where(inside, 1e6 / (1.0 + r2), 0.0).astype(np.float32)
    amplitude = weight * rng.uniform(0.5, 1.5, weight.shape).astype(np.float32) * 1e-3
    phase = rng.uniform(0, 2 * np.pi, weight.shape).astype(np.float32)
    real = (amplitude * np.cos(phase)).astype(np.float32)
    imag = (amplitude * np.sin(phase)).astype(np.float32)
    shells = np.arange(n // 2 + 1)
    tau2 = 1e-3 / (1.0 + shells**2)
    return real, imag, weight, tau2


def main() -> None:
    """Time both precisions for every size (best of ``--repeat``) and print one row per size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[64, 128, 256])
    parser.add_argument("--padding", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {fft_threads()} FFT threads "
        f"(scipy.fft from internal grid 96, numpy's FFT below), numpy {np.__version__}"
    )
    print("N  pad  P(internal)  float64[s]  mixed(2 double)[s]  max|diff|/max|map|")
    for n in args.sizes:
        real, imag, weight, tau2 = synthetic_call(n, args.padding)
        geom = GridGeometry.from_call(n, n, args.padding)
        results = {}
        times = {}
        for label, n_double in (("double", None), ("mixed", 2)):
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                results[label] = reconstruct(
                    real,
                    imag,
                    weight,
                    ori_size=n,
                    current_size=n,
                    padding_factor=args.padding,
                    tau2=tau2,
                    double_iterations=n_double,
                )
                best = min(best, time.perf_counter() - start)
            times[label] = best
        diff = np.abs(results["double"] - results["mixed"]).max() / np.abs(results["double"]).max()
        print(
            f"{n:<4d} {args.padding:<4g} {geom.grid_internal:<12d} {times['double']:<11.2f} "
            f"{times['mixed']:<19.2f} {diff:.2e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
