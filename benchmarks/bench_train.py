"""Training throughput, peak memory and prediction time of the correction engine.

Training: samples/s of full optimizer steps (noise2noise objective with α = 1, β = 0.5, i.e.
three U-Net forward passes + backward per sample, AdamW, GroupNorm, depth 3, 3 convolutions per
block) for cube 32 and 64 at widths 16 and 64. Each configuration runs in a fresh subprocess so
that its peak memory (max RSS on CPU, ``torch.cuda.max_memory_allocated`` on GPU) is its own.
Prediction: seconds to predict a whole 128³ and 256³ map with 80³ tiles (overlap 16).

    python benchmarks/bench_train.py                # CPU (and GPU if present), default sizes
    python benchmarks/bench_train.py --device cuda --pred-width 64
    python benchmarks/bench_train.py --quick        # small smoke run
    python benchmarks/bench_train.py --configs      # the CPU and GPU default configurations

On a CPU with native bfloat16 (AMX / AVX-512 BF16) every case also runs under bf16 autocast
(``mixed_precision``, the engine's default there); prediction rows give tiles/s.

Prints a Markdown table (paste into docs/benchmarks.md).

``--published``: training samples/s of the published spIsoNet next to ours instead, at the same
cubes, batch, loss weights and thread count (default cube 32, batch 4, α = 1, β = 0.5, 2
threads; widths ``--widths``, default 16), each tool in a fresh subprocess, interleaved over
``--rounds`` rounds (the order alternates per round), and the ratio ours/published of the median
samples/s. Method (the same for both): the tool's own training loop runs ``--warmup + --steps``
optimizer steps on random cubes; a global optimizer-step hook stamps the end of every step and
samples/s is ``batch · steps`` over the time from the end of the last warm-up step to the end of
the last one (steady state: no start-up, imports, data preparation or first step).

* published: its ``ddp_train`` (the function its ``reconstruct`` spawns per GPU) called as rank 0
  of one process, unmodified, on the CPU through our shim, with its network
  ``Unet(filter_base=width, unet_depth=3, add_last=True)`` (channels 16-32-64-128 at width 16,
  64-128-256-320 at 64; BatchNorm) and its DataLoader (4 workers reading the cubes from MRC
  files); see ``benchmarks/published_cpu/train_probe.py``. The published ``reconstruct`` command
  always uses width 64.
* ours: :func:`spIsoNet.engine.train.train_model` with ``UNet3D(width, depth 3)`` at the engine's
  default normalisation (GroupNorm; channels ``min(w·2^l, 5w)``: 16-32-64-80 at width 16,
  64-128-256-320 at 64), cubes cropped from in-memory maps.

    python benchmarks/bench_train.py --published [--widths 16 64] [--rounds 2] [--steps 4]
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


def train_case(
    device_name: str, cube: int, width: int, batch: int, steps: int, mixed_precision: bool = False
) -> dict:
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
        epochs=1,
        batch_size=batch,
        acc_batches=1,
        steps_per_epoch=1,
        show_progress=False,
        mixed_precision=mixed_precision,
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


def ours_steps_case(
    cube: int,
    width: int,
    batch: int,
    steps: int,
    warmup: int,
    threads: int,
    alpha: float = 1.0,
    beta: float = 0.5,
    mixed_precision: bool = False,
) -> dict:
    """Time our training loop like the published probe: step hook, after ``warmup`` steps.

    ``mixed_precision``: bfloat16 autocast (``--mixed_precision``, on CPUs with native bfloat16).

    Returns
    -------
    dict
        ``samples_per_s``, ``s_per_step``, ``steps``, ``threads``, ``peak_mb`` (max RSS, MiB).
    """
    import numpy as np
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from spIsoNet.engine.data import CubeSource
    from spIsoNet.engine.distributed import DistContext
    from spIsoNet.engine.fourier_weight import weight_to_rfft
    from spIsoNet.engine.train import TrainOptions, train_model
    from spIsoNet.engine.unet import UNet3D, UNetConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    box = max(2 * cube, 96)
    rng = np.random.default_rng(0)
    maps = [torch.from_numpy(rng.standard_normal((box,) * 3).astype(np.float32))]
    maps.append(maps[0] + 0.1)
    corners = rng.integers(0, box - cube, size=(batch * (warmup + steps), 3))
    weight = torch.from_numpy(weight_to_rfft(rng.random((cube,) * 3).astype(np.float32)))
    net = UNet3D(UNetConfig(width=width, depth=3))
    options = TrainOptions(
        epochs=1,
        batch_size=batch,
        acc_batches=1,
        steps_per_epoch=warmup + steps,
        alpha=alpha,
        beta=beta,
        show_progress=False,
        mixed_precision=mixed_precision,
    )
    stamps: list[float] = []
    register_optimizer_step_post_hook(lambda *args: stamps.append(time.perf_counter()))
    train_model(
        net,
        CubeSource(maps, corners, cube),
        weight,
        options,
        DistContext(device=torch.device("cpu")),
    )
    seconds = stamps[-1] - stamps[warmup - 1]
    timed = len(stamps) - warmup
    return {
        "samples_per_s": batch * timed / seconds,
        "s_per_step": seconds / timed,
        "steps": timed,
        "threads": torch.get_num_threads(),
        "peak_mb": _peak_mb(torch.device("cpu")),
    }


def predict_case(
    device_name: str, box: int, width: int, tile: int, batch: int, mixed_precision: bool = False
) -> dict:
    """Time the prediction of a random ``box``³ map in ``tile``³ tiles (after a warm-up tile).

    Returns ``seconds``, ``tiles`` (tiles of the map, overlap 16), ``tiles_per_s``, ``peak_mb``.
    """
    import numpy as np
    import torch

    from spIsoNet.engine.distributed import DistContext
    from spIsoNet.engine.predict import predict_volume, tile_layout
    from spIsoNet.engine.unet import UNet3D, UNetConfig

    device = torch.device(device_name)
    net = UNet3D(UNetConfig(width=width, depth=3)).to(device).eval()
    volume = np.random.default_rng(0).standard_normal((box,) * 3).astype(np.float32)
    ctx = DistContext(device=device)
    amp = {"mixed_precision": mixed_precision}
    warm = volume[:tile, :tile, :tile]
    predict_volume(net, warm, tile=tile, overlap=16, ctx=ctx, **amp)  # warm-up
    started = time.perf_counter()
    predict_volume(net, volume, tile=tile, overlap=16, batch_size=batch, ctx=ctx, **amp)
    seconds = time.perf_counter() - started
    tiles = len(tile_layout(box, tile, 16, 2**net.config.depth)[2]) ** 3
    return {
        "seconds": seconds,
        "tiles": tiles,
        "tiles_per_s": tiles / seconds,
        "peak_mb": _peak_mb(device),
    }


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


def _published_child(threads: int, **kw) -> dict:
    """Run the published probe in a fresh interpreter of the published tool's Python."""
    from published_tool import PublishedToolError, published_env, published_paths

    try:
        checkout, python = published_paths()
    except PublishedToolError as exc:
        return {"error": str(exc)}
    env = published_env(checkout, threads)
    cmd = [str(python), "-m", "train_probe", json.dumps(kw)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd="/")
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}


def published_side_by_side(args) -> int:
    """Print training samples/s of the published tool and ours, interleaved, and the ratios.

    Parameters
    ----------
    args : argparse.Namespace
        ``widths``, ``cube``, ``batch``, ``steps``, ``warmup``, ``rounds``, ``threads``.

    Returns
    -------
    int
        0, or 2 with one line on stderr if the published tool is missing.
    """
    import statistics

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from published_tool import PublishedToolError, published_paths

    try:
        published_paths()
    except PublishedToolError as exc:
        print(f"bench_train: {exc}", file=sys.stderr)
        return 2
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(
        f"# bench_train --published {time.strftime('%Y-%m-%d %H:%M %Z')}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
        f"load {load}, threads {args.threads}, cube {args.cube}, batch {args.batch}, "
        f"α 1, β 0.5, {args.warmup} warm-up + {args.steps} timed steps"
    )
    print("\n| round | tool | width | samples/s | s/step | peak MB |")
    print("|---|---|---|---|---|---|")
    env_threads = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    os.environ.update(env_threads)
    results: dict = {}
    common = {"cube": args.cube, "batch": args.batch, "steps": args.steps, "warmup": args.warmup}
    from spIsoNet.engine.device import cpu_has_native_bf16

    # ours-bf16: the same loop under bfloat16 autocast (--mixed_precision), where the CPU has it.
    tools = ["published", "ours"] + (["ours-bf16"] if cpu_has_native_bf16() else [])
    for rnd in range(args.rounds):
        for width in args.widths:
            order = tools if rnd % 2 == 0 else tools[::-1]
            for tool in order:
                if tool == "published":
                    r = _published_child(args.threads, width=width, **common)
                else:
                    r = _child(
                        "ours_steps_case",
                        width=width,
                        threads=args.threads,
                        mixed_precision=tool == "ours-bf16",
                        **common,
                    )
                if "error" in r:
                    print(f"| {rnd + 1} | {tool} | {width} | error: {r['error']} | | |")
                    continue
                results.setdefault((tool, width), []).append(r["samples_per_s"])
                print(
                    f"| {rnd + 1} | {tool} | {width} | {r['samples_per_s']:.3f} | "
                    f"{r['s_per_step']:.2f} | {r['peak_mb']:.0f} |",
                    flush=True,
                )
    print("\n| width | tool | published samples/s | ours samples/s | ours / published |")
    print("|---|---|---|---|---|")
    for width in args.widths:
        for tool in tools[1:]:
            pub, ours = results.get(("published", width)), results.get((tool, width))
            if not pub or not ours:
                cells = [f"{statistics.median(v):.3f}" if v else "-" for v in (pub, ours)]
                print(f"| {width} | {tool} | {cells[0]} | {cells[1]} | - |")
                continue
            p, o = statistics.median(pub), statistics.median(ours)
            print(f"| {width} | {tool} | {p:.3f} | {o:.3f} | {o / p:.2f} |")
    return 0


_FULL_GRID = [(32, 16, 4), (32, 64, 2), (64, 16, 2), (64, 64, 1)]


def _precision(mixed_precision: bool) -> str:
    return "bf16 autocast" if mixed_precision else "float32"


def _case_row(head: str, kind: str, columns: list[tuple[str, str]], **kw) -> None:
    """Run case ``kind`` in a child process and print its table row: ``head`` and ``columns``.

    ``columns`` are ``(result key, format spec)``; a failed case prints its error instead.
    """
    r = _child(kind, **kw)
    if "error" in r:
        cells = [f"error: {r['error']}"] + [""] * (len(columns) - 1)
    else:
        cells = [format(r[key], spec) for key, spec in columns]
    print(" | ".join([head, *cells]) + " |", flush=True)


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
    parser.add_argument(
        "--configs",
        action="store_true",
        help="only the two default configurations (CPU: width 16, 32³ cubes, 48³ tiles; GPU: "
        "width 64, 64³ cubes, 80³ tiles), each in float32 and bf16 autocast where native",
    )
    parser.add_argument(
        "--published", action="store_true", help="training samples/s: published vs ours"
    )
    parser.add_argument("--widths", nargs="+", type=int, default=[16], help="with --published")
    parser.add_argument("--cube", type=int, default=32, help="with --published")
    parser.add_argument("--batch", type=int, default=4, help="with --published")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps (--published)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (--published)")
    parser.add_argument("--threads", type=int, default=2, help="threads (--published)")
    args = parser.parse_args(argv)
    if args.published:
        if args.warmup < 1 or args.steps < 1:
            parser.error("--published needs --warmup >= 1 and --steps >= 1")
        return published_side_by_side(args)
    import torch

    devices = ["cpu"]
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices = ["cuda"] if args.device == "cuda" else ["cpu", "cuda"]
    print(
        f"# bench_train {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU(s), torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    # (cube, width, batch): the CPU default / published CPU budget, and the GPU default network
    train_grid = [(32, 16, 4), (64, 64, 1)] if args.configs else _FULL_GRID
    boxes = [128] if args.configs else [128, 256]
    # (width, tile): the CPU default (48³ tiles) and the GPU default (80³)
    predict_grid = [(16, 48), (64, 80)] if args.configs else [(args.pred_width, 80)]
    if args.quick:
        train_grid, boxes, predict_grid = [(16, 4, 2)], [32], [(4, 32)]
    from spIsoNet.engine.device import cpu_has_native_bf16

    precisions = {"cpu": [False] + ([True] if cpu_has_native_bf16() else []), "cuda": [False, True]}
    print("\n| device | precision | cube | width | batch | samples/s | s/step | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for dev in devices:
        for cube, width, batch in train_grid:
            if dev == "cuda":
                batch *= 4
            for amp in precisions[dev]:
                _case_row(
                    f"| {dev} | {_precision(amp)} | {cube} | {width} | {batch}",
                    "train_case",
                    [("samples_per_s", ".3f"), ("s_per_step", ".2f"), ("peak_mb", ".0f")],
                    device_name=dev,
                    cube=cube,
                    width=width,
                    batch=batch,
                    steps=args.steps,
                    mixed_precision=amp,
                )
    print("\n| device | precision | box | width | tile | tiles | seconds | tiles/s | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dev in devices:
        for box in boxes:
            for width, tile in predict_grid:
                width = width if dev == "cpu" or args.quick else 64
                for amp in precisions[dev]:
                    _case_row(
                        f"| {dev} | {_precision(amp)} | {box} | {width} | {tile}",
                        "predict_case",
                        [
                            ("tiles", "d"),
                            ("seconds", ".1f"),
                            ("tiles_per_s", ".2f"),
                            ("peak_mb", ".0f"),
                        ],  # fmt: skip
                        device_name=dev,
                        box=box,
                        width=width,
                        tile=tile,
                        batch=1 if dev == "cpu" else 4,
                        mixed_precision=amp,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
