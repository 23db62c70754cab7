#!/usr/bin/env python3
"""Quality benchmark: the demo's simulated case corrected at a larger training budget.

Prints, for each case, the FSC to the ground truth before and after correction (worst/best/mean
directional resolution at FSC = 0.5 in 20° cones, global resolution, sphericity of the
map-vs-truth 3DFSC), the relative gains and the wall time, and writes everything to
``<output_dir>/bench_quality.json``.

Cases: ``preferred`` (the README demo: 90 % of views within 15° of z) and ``isotropic`` (same
particles, uniform views: a "do no harm" check, the correction should not make it worse).

Usage::

    python benchmarks/bench_quality.py [--epochs 24] [--net_width 8] [--cases preferred isotropic]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spIsoNet.demo import default_settings, run_demo  # noqa: E402
from spIsoNet.io.jsonio import write_json  # noqa: E402
from spIsoNet.log import setup_logging  # noqa: E402
from spIsoNet.timing import stage_timer  # noqa: E402


def _machine() -> str:
    import os

    import torch

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="demo case at a larger training budget")
    parser.add_argument("--output_dir", default="bench_quality_out", help="scratch folder")
    parser.add_argument("--epochs", type=int, default=24, help="training epochs (demo: 12)")
    parser.add_argument("--net_width", type=int, default=None, help="U-Net base channels (demo: 8)")
    parser.add_argument("--n_subvolume", type=int, default=None, help="training cubes per epoch")
    parser.add_argument("--seed", type=int, default=0, help="simulation and training seed")
    parser.add_argument(
        "--cases", nargs="+", default=["preferred"], choices=["preferred", "isotropic"]
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)
    setup_logging()
    out = Path(args.output_dir)
    results = {"machine": _machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "cases": {}}
    for case in args.cases:
        settings = default_settings(
            seed=args.seed,
            epochs=args.epochs,
            net_width=args.net_width,
            n_subvolume=args.n_subvolume,
            fraction_preferred=0.0 if case == "isotropic" else None,
            device=args.device,
        )
        wall: dict[str, float] = {}
        with stage_timer(wall, case):
            report = run_demo(out / case, settings, show_progress=False)
        results["cases"][case] = {
            "before": report["before"],
            "after": report["after"],
            "improvement": report["improvement"],
            "wall_seconds": round(wall[case], 1),
            "engine_timings": report["engine"]["timings"],
            "settings": report["demo_settings"],
        }
    print(f"\nbench_quality — {results['machine']} — {results['date']}")
    header = (
        f"{'case':10s}{'worst Å':>16s}{'best Å':>16s}{'mean Å':>16s}{'global Å':>16s}"
        f"{'sphericity':>16s}{'worst gain':>11s}{'wall':>8s}"
    )
    print(header)
    for case, r in results["cases"].items():
        b, a = r["before"], r["after"]

        def pair(key, fmt="{:.2f}", b=b, a=a):
            if b.get(key) is None or a.get(key) is None:
                return f"{'n/a':>16s}"
            return f"{fmt.format(b[key]) + ' → ' + fmt.format(a[key]):>16s}"

        print(
            f"{case:10s}{pair('dir_res_worst')}{pair('dir_res_best')}{pair('dir_res_mean')}"
            f"{pair('global_res')}{pair('sphericity', '{:.3f}')}"
            f"{100 * r['improvement']['worst_direction_gain']:>10.1f}%{r['wall_seconds']:>7.0f}s"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "bench_quality.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
