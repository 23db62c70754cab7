#!/usr/bin/env python3
"""Quality benchmark: correction of preferred-orientation half-maps of real atomic models.

Truths are densities of two deposited atomic models (``benchmarks/data``: heavy-atom
coordinates and atomic numbers extracted from PDB entries 4AKE, adenylate kinase, and 1A28,
progesterone receptor ligand-binding domain dimer; wwPDB data are CC0), placed in a random
orientation per seed, splatted onto the grid (weight Z), blurred by a B-factor. Half-maps come
from ``spIsoNet.simulate`` (independent particle sets, noisy central slices, Wiener
reconstruction) with two view distributions:

* ``top``: 90 % of the views within 15° of ±z (the rest uniform): a missing cone around z;
* ``side``: 90 % of the views within 15° of the equator (side views), the rest uniform.

Each case is corrected with ``correct_maps`` at the budget the published tool was measured with
(800 training cubes of 32³: 4 epochs × 200, batch 4, width 16, prediction tiles of 48³; everything
else as the engine's defaults) unless overridden, and scored against the truth: FSC = 0.5 of the
average of the two halves in 20° cones around 100 directions (worst / best direction) and the
global FSC = 0.5 resolution. Printed: a table per case and the mean gains; written:
``<output_dir>/bench_quality.json``.

``--published`` also corrects every case with the published spIsoNet on the same half-maps,
mask, ``limit_res`` and budget (epochs, cubes per epoch, cube 32, prediction tiles 48, batch 4,
no accumulation, α = 1, β = 0.5, seeded through the shim with the case's seed), run unmodified
on the CPU by ``benchmarks/published_tool.py`` (its own ``fsc3d`` then ``reconstruct``, as its
tutorial does; checkout and Python from ``SPISONET_PUBLISHED`` / ``SPISONET_PUBLISHED_PYTHON``).
Its network is its own fixed width-64 U-Net (the published command line has no width option),
so ``--net_width`` applies to ours only. Its output is scored with the same :func:`score`; the
table then shows input, published and ours side by side (seconds: the published ``reconstruct``
command, start-up included, against our ``correct_maps``; both without the FSC3D computation,
whose published time is in the JSON), and the JSON has ``published``,
``gain_published`` and ``seconds_published`` per case. ``--skip_ours`` runs the published tool
only (for scheduling the two separately; the "ours" columns are then empty).

Usage::

    python benchmarks/bench_quality.py [--structures 4ake 1a28] [--views top side]
        [--seeds 0 1 2] [--epochs 4] [--n_subvolume 200] [--independent] [--isotropic]
        [--published [--skip_ours]]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spIsoNet.io.jsonio import write_json  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
STRUCTURES = {"4ake": (64, 1.5), "1a28": (64, 2.0)}  # name -> (box, Å/voxel)
#: the published tool's measured budget besides epochs × cubes, given to both tools
BUDGET = dict(cube_size=32, predict_crop_size=48, batch_size=4, acc_batches=1, alpha=1.0, beta=0.5)


def atomic_density(name: str, box: int, voxel_size: float, seed: int, b_factor: float = 60.0):
    """Density of a shipped atomic model in a random orientation: float32 ``[box]*3``."""
    data = np.load(DATA / f"{name}_atoms.npz")
    xyz = data["zyx"].astype(np.float64)
    weight = data["atomic_number"].astype(np.float64)
    xyz -= xyz.mean(axis=0)
    q = np.random.default_rng(1000 + seed).standard_normal(4)
    a, b, c, d = q / np.linalg.norm(q)
    rotation = np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )
    points = xyz @ rotation.T / voxel_size + box / 2
    base = np.floor(points).astype(np.int64)
    frac = points - base
    grid = np.zeros(box**3)
    for corner in range(8):
        offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        w = np.prod(np.where(offset, frac, 1 - frac), axis=1) * weight
        idx = np.clip(base + offset, 0, box - 1)
        np.add.at(grid, (idx[:, 0] * box + idx[:, 1]) * box + idx[:, 2], w)
    k = np.fft.fftfreq(box) / voxel_size
    s2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + np.fft.rfftfreq(box, voxel_size) ** 2
    spectrum = np.fft.rfftn(grid.reshape((box,) * 3)) * np.exp(-b_factor * s2 / 4)
    return np.fft.irfftn(spectrum, (box,) * 3, axes=(0, 1, 2)).astype(np.float32)


def side_views(n: int, rng: np.random.Generator, band: float = 15.0) -> np.ndarray:
    """Draw ``n`` unit view directions ``[n, 3]`` (z, y, x) within ``band``° of the equator."""
    z = rng.uniform(-np.sin(np.radians(band)), np.sin(np.radians(band)), n)
    phi = rng.uniform(0, 2 * np.pi, n)
    r = np.sqrt(1 - z**2)
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)], axis=1)


def half_maps(truth, voxel_size, views: str, seed: int, n_particles: int, fraction: float):
    """Two independent preferred-orientation half-maps and a soft mask of ``truth``."""
    from spIsoNet.simulate import (
        OrientationModel,
        SimulationSettings,
        sample_views,
        simulate_halves,
    )

    model = OrientationModel(
        n_particles=n_particles, fraction_preferred=0.0 if views == "iso" else fraction
    )
    settings = SimulationSettings(
        box=truth.shape[0], voxel_size=voxel_size, snr=0.004, envelope_b=80.0, orientation=model
    )

    def side(rng: np.random.Generator):
        # 500 views within 15° of the equator carry the preferred fraction, the rest uniform
        n_pref = int(round(fraction * n_particles))
        uniform = OrientationModel(n_particles=n_particles - n_pref, fraction_preferred=0.0)
        dirs_u, parts_u = sample_views(uniform, rng)
        dirs_p = side_views(500, rng)
        return (
            np.concatenate([dirs_p, dirs_u]),
            np.concatenate([np.full(500, n_pref / 500), parts_u]),
        )

    seeds = tuple(np.random.SeedSequence(seed).spawn(2))
    case = simulate_halves(truth, settings, seeds, side if views == "side" else None)
    return case.half1, case.half2, case.mask


def score(volume, truth, voxel_size, mask) -> dict:
    """Score ``volume`` against ``truth``: worst/best directional and global resolution (Å)."""
    from spIsoNet.demo import truth_metrics

    m = truth_metrics(volume, truth, voxel_size, mask=mask, n_directions=100, with_sphericity=False)
    return {k: float(m[k]) for k in ("dir_res_worst", "dir_res_best", "global_res")}


def run_case(structure, views, seed, args, out: Path) -> dict:
    """Simulate, correct and score one case; return its row (scores, relative gains, seconds)."""
    from spIsoNet.engine import EngineSettings, correct_maps
    from spIsoNet.fourier import fsc_curve, resolution_at
    from spIsoNet.fsc3d import compute_fsc3d

    box, voxel_size = STRUCTURES[structure]
    truth = atomic_density(structure, box, voxel_size, seed)
    h1, h2, mask = half_maps(truth, voxel_size, views, seed, args.n_particles, 0.9)
    fsc3d = compute_fsc3d(h1, h2, voxel_size, mask=mask)
    limit = resolution_at(fsc_curve(h1, h2, mask), box, voxel_size, 0.5).angstrom
    before = score(0.5 * (h1 + h2), truth, voxel_size, mask)
    row = {
        "structure": structure,
        "views": views,
        "seed": seed,
        "limit_res": float(limit),
        "input": before,
    }
    if getattr(args, "published", False):
        workdir = out / f"published_{structure}_{views}_{seed}"
        row.update(
            run_published_case(h1, h2, mask, truth, before, voxel_size, limit, seed, args, workdir)
        )
    if getattr(args, "skip_ours", False):
        return row
    settings = EngineSettings(
        epochs=args.epochs,
        n_subvolume=args.n_subvolume,
        **BUDGET,
        net_width=args.net_width,
        seed=seed,
        device=args.device,
        independent=args.independent,
        show_progress=False,
        keep_measured=False,  # applied below, so the network alone is scored too
        **getattr(args, "engine", {}),
    )
    started = time.perf_counter()
    result = correct_maps(
        h1,
        h2,
        voxel_size,
        fsc3d_volume=fsc3d.volume,
        limit_res=limit,
        mask=mask,
        settings=settings,
        output_dir=out / f"{structure}_{views}_{seed}",
    )
    network = result.corrected  # recombined network outputs (the published replacement)
    if getattr(args, "save_maps", False):  # for offline studies of the consistency step
        np.savez_compressed(
            out / f"{structure}_{views}_{seed}" / "maps.npz",
            half1=h1, half2=h2, network1=network[0], network2=network[1], truth=truth,
            mask=mask, fsc3d=fsc3d.volume, voxel_size=voxel_size, limit_res=limit,
        )  # fmt: skip
    if not args.no_keep_measured:  # what correct_maps does by default, applied here
        from spIsoNet.engine.consistency import keep_measured

        corrected, _ = keep_measured(
            [h1, h2],
            network,
            voxel_size,
            limit,
            mask=mask,
            fsc3d_volume=fsc3d.volume,
            independent=args.independent,
        )
    else:
        corrected = network
    seconds = time.perf_counter() - started
    alone = score(0.5 * (network[0] + network[1]), truth, voxel_size, mask)
    after = score(0.5 * (corrected[0] + corrected[1]), truth, voxel_size, mask)
    row.update(
        {
            "corrected": after,
            "gain": _gains(before, after),
            "network": alone,
            "gain_network": _gains(before, alone),
            "seconds": seconds,
        }
    )
    return row


def _gains(before: dict, after: dict) -> dict:
    """Relative improvement per score (positive: finer resolution than ``before``)."""
    return {k: (before[k] - after[k]) / before[k] for k in before}


def run_published_case(
    h1, h2, mask, truth, before: dict, voxel_size, limit, seed, args, workdir: Path
) -> dict:
    """Correct one case with the published tool and score it like ours.

    Returns
    -------
    dict
        ``published`` (scores), ``gain_published`` (relative to the input), ``seconds_published``
        (``fsc3d``, ``reconstruct``, ``total``: wall seconds, start-up included) and
        ``published_log`` (path of the tool's log).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from published_tool import run_published

    run = run_published(
        h1,
        h2,
        mask,
        voxel_size,
        workdir,
        limit_res=limit,
        epochs=args.epochs,
        n_subvolume=args.n_subvolume,
        **BUDGET,
        seed=seed,
    )
    after = score(0.5 * (run.corrected_half1 + run.corrected_half2), truth, voxel_size, mask)
    return {
        "published": after,
        "gain_published": _gains(before, after),
        "seconds_published": run.seconds,
        "published_log": str(run.log_path),
    }


def _engine_overrides(items: list[str]) -> dict:
    """``["learning_rate=1e-3", "mixed_precision=true"]`` → typed EngineSettings overrides."""
    import dataclasses

    from spIsoNet.engine.settings import EngineSettings

    fields = {f.name for f in dataclasses.fields(EngineSettings)}
    out: dict = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in fields:
            raise ValueError(f"--set {item}: expected NAME=VALUE with an EngineSettings field")
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            value: object = lowered == "true"
        else:
            try:
                value = int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    value = text
        out[name] = value
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every case, print the table and the mean gains, write ``bench_quality.json``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0, or 2 with one line on stderr when the published tool (with
        ``--published``) is missing or fails.
    """
    parser = argparse.ArgumentParser(description="correction quality on atomic-model truths")
    parser.add_argument("--output_dir", default="bench_quality_out", help="scratch folder")
    parser.add_argument("--structures", nargs="+", default=list(STRUCTURES), choices=STRUCTURES)
    parser.add_argument("--views", nargs="+", default=["top", "side"], choices=["top", "side"])
    parser.add_argument("--isotropic", action="store_true", help="add uniform-view cases")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=4, help="training epochs")
    parser.add_argument("--n_subvolume", type=int, default=200, help="training cubes per epoch")
    parser.add_argument("--net_width", type=int, default=16, help="U-Net base channels")
    parser.add_argument("--n_particles", type=int, default=4000, help="particles per half")
    parser.add_argument("--independent", action="store_true", help="gold-standard halves")
    parser.add_argument(
        "--no_keep_measured", action="store_true", help="without the data-consistency step"
    )
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--save_maps",
        action="store_true",
        help="write each case's halves, network outputs, truth, mask, FSC3D to <case>/maps.npz",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="other engine settings of ours (EngineSettings fields), e.g. mixed_precision=true",
    )
    parser.add_argument(
        "--published", action="store_true", help="also run the published tool (side by side)"
    )
    parser.add_argument(
        "--skip_ours", action="store_true", help="with --published: the published tool only"
    )
    args = parser.parse_args(argv)
    if args.skip_ours and not args.published:
        parser.error("--skip_ours needs --published")
    try:
        args.engine = _engine_overrides(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    tool_errors: tuple[type[Exception], ...] = ()
    if args.published:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from published_tool import PublishedToolError, published_paths

        tool_errors = (PublishedToolError,)
        try:
            published_paths()
        except PublishedToolError as exc:
            print(f"bench_quality: {exc}", file=sys.stderr)
            return 2
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    views = list(args.views) + (["iso"] if args.isotropic else [])
    rows = []
    print(_header(args.published), flush=True)
    for structure in args.structures:
        for view in views:
            for seed in args.seeds:
                try:
                    row = run_case(structure, view, seed, args, out)
                except tool_errors as exc:
                    print(f"bench_quality: {exc}", file=sys.stderr)
                    return 2
                rows.append(row)
                print(_row_line(row, args.published), flush=True)
    record = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s)",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "settings": vars(args),
        "cases": rows,
    }
    if args.published:
        from published_tool import default_threads

        root, exe = published_paths()
        record["published_tool"] = {
            "checkout": str(root),
            "python": str(exe),
            "threads": default_threads(),
            "network": "its fixed Unet(filter_base=64, unet_depth=3): 64-128-256-320, BatchNorm",
        }
    for key, label, name in (
        ("gain", "mean gains", "mean_gain"),
        ("gain_network", "mean gains (network alone)", "mean_gain_network"),
        ("gain_published", "mean gains (published)", "mean_gain_published"),
    ):
        if rows and key in rows[0]:
            mean = {k: float(np.mean([r[key][k] for r in rows])) for k in rows[0][key]}
            print(f"{label}: " + ", ".join(f"{k} {100 * v:+.1f} %" for k, v in mean.items()))
            record[name] = mean
    write_json(out / "bench_quality.json", record)
    return 0


def _header(published: bool) -> str:
    """Column titles of the per-case table (input → ours, or input / published / ours)."""
    if not published:
        return (
            f"{'case':22s} {'worst in→out (Å)':>18s} {'best in→out':>16s} {'global in→out':>16s} "
            f"{'worst gain':>10s} {'network alone':>14s} {'s':>6s}"
        )
    trio = "in / pub / ours"
    return (
        f"{'case':16s} {'worst ' + trio + ' (Å)':>25s} {'best ' + trio:>22s} "
        f"{'global ' + trio:>24s} {'worst gain pub / ours':>22s} {'s pub / ours':>14s}"
    )


def _row_line(row: dict, published: bool) -> str:
    """One line of the per-case table (see :func:`_header`); missing results print as ``-``."""
    name = f"{row['structure']} {row['views']} s{row['seed']}"
    i, c = row["input"], row.get("corrected")
    if not published:
        g = row["gain"]
        return (
            f"{name:22s} "
            f"{i['dir_res_worst']:7.2f} → {c['dir_res_worst']:6.2f}   "
            f"{i['dir_res_best']:6.2f} → {c['dir_res_best']:5.2f}   "
            f"{i['global_res']:6.2f} → {c['global_res']:5.2f}   "
            f"{100 * g['dir_res_worst']:+8.1f} % "
            f"{100 * row['gain_network']['dir_res_worst']:+12.1f} % {row['seconds']:6.0f}"
        )
    p = row["published"]

    def value(scores: dict | None, key: str, fmt: str = "6.2f") -> str:
        return "-" if scores is None else format(scores[key], fmt)

    trios = [
        f"{i[k]:6.2f} / {value(p, k)} / {value(c, k)}"
        for k in ("dir_res_worst", "dir_res_best", "global_res")
    ]
    gains = f"{100 * row['gain_published']['dir_res_worst']:+6.1f} % / " + (
        "-" if c is None else f"{100 * row['gain']['dir_res_worst']:+.1f} %"
    )
    seconds = f"{row['seconds_published']['reconstruct']:.0f} / " + (
        "-" if c is None else f"{row['seconds']:.0f}"
    )
    return f"{name:16s} {trios[0]:>25s} {trios[1]:>22s} {trios[2]:>24s} {gains:>22s} {seconds:>14s}"


if __name__ == "__main__":
    raise SystemExit(main())
