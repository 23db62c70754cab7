"""Training throughput, peak memory and prediction time of the correction engine.

Training: samples/s of full optimizer steps (noise2noise objective with α = 1, β = 0.5, i.e.
three U-Net forward passes + backward per sample, AdamW, GroupNorm, depth 3, 3 convolutions per
block) for cube 32 and 64 at widths 16 and 64. Each configuration runs in a fresh subprocess so
that its peak memory (max RSS on CPU, ``torch.cuda.max_memory_allocated`` on GPU) is its own.
Prediction: seconds to predict a whole 128³ and 256³ map with 80³ tiles (overlap 16).

    python benchmarks/bench_train.py                # CPU (and GPU if present), default sizes
    python benchmarks/bench_train.py --device cuda --pred-width 64
    python benchmarks/bench_train.py --quick        # small smoke run

Prints a Markdown table (paste into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _peak_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def train_case(device_name: str, cube: int, width: int, batch: int, steps: int) -> dict:
    """Time ``steps`` optimizer steps (after one warm-up step) in this process."""
    import numpy as np
    import torch

    from spIsoNet.engine.data import CubeSource
    from spIsoNet.engine.distributed import DistContext
    from spIsoNet.engine.fourier_weight import weight_to_rfft
    from spIsoNet.engine.train import TrainOptions, train_model
    from spIsoNet.engine.unet import UNet3D, UNetConfig

    device = torch.device(device_name)
    torch.manual_seed(0)
    box = max(2 * cube, 96)
    rng = np.random.default_rng(0)
    maps = [torch.from_numpy(rng.standard_normal((box,) * 3).astype(np.float32)).to(device)]
    maps.append(maps[0] + 0.1)
    corners = rng.integers(0, box - cube, size=(64, 3))
    weight = torch.from_numpy(weight_to_rfft(rng.random((cube,) * 3).astype(np.float32)))
    net = UNet3D(UNetConfig(width=width, depth=3)).to(device)
    ctx = DistContext(device=device)
    options = TrainOptions(
        epochs=1, batch_size=batch, acc_batches=1, steps_per_epoch=1, show_progress=False
    )
    source = CubeSource(maps, corners, cube)
    train_model(net, source, weight.to(device), options, ctx)  # warm-up (allocations, kernels)
    options.steps_per_epoch = steps
    options.epochs = 2
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    train_model(net, source, weight.to(device), options, ctx, start_epoch=1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {
        "samples_per_s": steps * batch / seconds,
        "s_per_step": seconds / steps,
        "peak_mb": _peak_mb(device),
    }


def predict_case(device_name: str, box: int, width: int, tile: int, batch: int) -> dict:
    """Time the prediction of a random ``box``³ map in ``tile``³ tiles (after a warm-up tile)."""
    import numpy as np
    import torch

    from spIsoNet.engine.distributed import DistContext
    from spIsoNet.engine.predict import predict_volume
    from spIsoNet.engine.unet import UNet3D, UNetConfig

    device = torch.device(device_name)
    net = UNet3D(UNetConfig(width=width, depth=3)).to(device).eval()
    volume = np.random.default_rng(0).standard_normal((box,) * 3).astype(np.float32)
    ctx = DistContext(device=device)
    predict_volume(net, volume[:tile, :tile, :tile], tile=tile, overlap=16, ctx=ctx)  # warm-up
    started = time.perf_counter()
    predict_volume(net, volume, tile=tile, overlap=16, batch_size=batch, ctx=ctx)
    return {"seconds": time.perf_counter() - started, "peak_mb": _peak_mb(device)}


def _child(kind: str, **kw) -> dict:
    """Run one case in a fresh interpreter and return its JSON result."""
    here = str(Path(__file__).parent)
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import bench_train as b; "
        f"print('RESULT', json.dumps(b.{kind}(**json.loads({json.dumps(kw)!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}


def main(argv=None) -> int:
    """Run every training and prediction case in a child process and print the two tables.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status (0).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--steps", type=int, default=2, help="timed optimizer steps per case")
    parser.add_argument("--pred-width", type=int, default=16, help="network width (prediction)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args(argv)
    import torch

    devices = ["cpu"]
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices = ["cuda"] if args.device == "cuda" else ["cpu", "cuda"]
    print(
        f"# bench_train {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU(s), torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    train_grid = [(32, 16, 4), (32, 64, 2), (64, 16, 2), (64, 64, 1)]
    boxes = [128, 256]
    if args.quick:
        train_grid, boxes = [(16, 4, 2)], [32]
    print("\n| device | cube | width | batch | samples/s | s/step | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for dev in devices:
        for cube, width, batch in train_grid:
            if dev == "cuda":
                batch *= 4
            r = _child(
                "train_case",
                device_name=dev,
                cube=cube,
                width=width,
                batch=batch,
                steps=args.steps,
            )
            if "error" in r:
                print(f"| {dev} | {cube} | {width} | {batch} | error: {r['error']} | | |")
                continue
            print(
                f"| {dev} | {cube} | {width} | {batch} | {r['samples_per_s']:.3f} | "
                f"{r['s_per_step']:.2f} | {r['peak_mb']:.0f} |",
                flush=True,
            )
    print("\n| device | box | width | tile | seconds | peak MB |")
    print("|---|---|---|---|---|---|")
    tile = 32 if args.quick else 80
    for dev in devices:
        for box in boxes:
            width = args.pred_width if dev == "cpu" else 64
            r = _child(
                "predict_case",
                device_name=dev,
                box=box,
                width=width,
                tile=tile,
                batch=1 if dev == "cpu" else 4,
            )
            if "error" in r:
                print(f"| {dev} | {box} | {width} | {tile} | error: {r['error']} | |")
                continue
            print(
                f"| {dev} | {box} | {width} | {tile} | {r['seconds']:.1f} | {r['peak_mb']:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
