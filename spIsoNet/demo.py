"""The built-in demonstration: a simulated preferred-orientation case with known ground truth.

:func:`run_demo` simulates the case (:mod:`spIsoNet.simulate`), writes the truth, the two
half-maps and the mask as MRC files, computes the FSC3D (:mod:`spIsoNet.fsc3d`), corrects the
half-maps with the engine (:func:`spIsoNet.engine.pipeline.correct_maps`) using a CPU-sized
network, and measures the maps against the truth before and after: the directional FSC between
the map (average of the two halves) and the truth, in 20° cones along ≥ 100 directions,
resolution at FSC = 0.5 (the map-vs-truth equivalent of the half-map 0.143 criterion) in the worst
and best direction, plus the global FSC-to-truth and the sphericity of the map-vs-truth 3DFSC. It
writes figures, ``demo_report.json`` and prints a summary. ``spisonet.py demo`` and
``figures/make_figures.py`` are thin wrappers around it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from spIsoNet.log import get_logger
from spIsoNet.simulate import OrientationModel, SimulatedCase, SimulationSettings, simulate_case

log = get_logger("demo")

#: threshold of the FSC between a map and the truth that corresponds to the half-map 0.143
#: criterion (FSC_truth = sqrt(2 FSC / (1 + FSC)) = 0.5 at FSC = 0.143)
TRUTH_THRESHOLD = 0.5


@dataclass
class DemoSettings:
    """What the demo simulates and how it trains.

    Attributes
    ----------
    simulation : SimulationSettings
        The simulated case (box, voxel size, particles, orientation distribution, SNR, seed).
    epochs, n_subvolume, cube_size, net_width, net_depth, batch_size, learning_rate, alpha, beta
        Engine settings (:class:`spIsoNet.engine.pipeline.EngineSettings`), CPU-sized.
    n_conv : int
        Convolutions per U-Net block.
    norm : str
        U-Net normalisation layer. The demo's width-8 CPU network trains better without one:
        at learning rate 1e-3, "none" improved the worst direction by 13–16 % over seeds 0–2
        where GroupNorm gave 9–10 % (docs/benchmarks.md); the engine's default stays "group".
    predict_crop_size : int
        Prediction tile edge, voxels.
    limit_fsc : float
        ``limit_res`` given to the engine = resolution where the masked half-map FSC falls below
        this (0.5: the published RELION wrapper's ISONET_FSC_05 choice; 0.143: the global
        gold-standard resolution). Only frequencies inside it are replaced by the network.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    ncpus : int or None
        CPU threads (default all).
    fsc3d_cone : float
        Cone half-angle of the FSC3D given to the engine, degrees.
    n_directions : int
        Directions of the directional FSC-to-truth (Fibonacci, one hemisphere).
    metric_cone : float
        Cone half-angle of the directional FSC-to-truth, degrees (3DFSC convention 20°).
    """

    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    epochs: int = 12
    n_subvolume: int = 120
    cube_size: int = 32
    net_width: int = 8
    net_depth: int = 3
    n_conv: int = 2
    batch_size: int | None = 4
    learning_rate: float = 1e-3
    norm: str = "none"
    alpha: float = 1.0
    beta: float = 0.5
    predict_crop_size: int = 64
    limit_fsc: float = 0.5
    device: str = "auto"
    ncpus: int | None = None
    fsc3d_cone: float = 10.0
    n_directions: int = 128
    metric_cone: float = 20.0

    def engine_settings(self, seed: int, show_progress: bool = True):
        """The :class:`EngineSettings` of this demo."""
        from spIsoNet.engine.pipeline import EngineSettings

        return EngineSettings(
            epochs=self.epochs,
            alpha=self.alpha,
            beta=self.beta,
            n_subvolume=self.n_subvolume,
            cube_size=self.cube_size,
            predict_crop_size=self.predict_crop_size,
            batch_size=self.batch_size,
            acc_batches=1,
            learning_rate=self.learning_rate,
            net_width=self.net_width,
            net_depth=self.net_depth,
            n_conv=self.n_conv,
            norm=self.norm,
            seed=seed,
            device=self.device,
            ncpus=self.ncpus,
            show_progress=show_progress,
        )


def default_settings(
    *, quick: bool = False, box: int | None = None, seed: int = 0, **overrides
) -> DemoSettings:
    """Demo settings: the full demo (box 64), or ``quick`` ones for tests (box 40, tiny net).

    Parameters
    ----------
    quick : bool
        Small box and short training: checks the whole path in well under a minute; the
        quality targets are not expected to be met.
    box : int, optional
        Box edge (default 64, quick 40).
    seed : int
        Simulation and training seed.
    overrides
        Any :class:`DemoSettings` field (``None`` values are ignored).
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    orientation_keys = {"n_particles", "fraction_preferred", "cone_angle", "n_views"}
    sim_keys = {"snr", "voxel_size", "b_factor", "envelope_b"}
    orientation_over = {k: overrides.pop(k) for k in list(overrides) if k in orientation_keys}
    sim_over = {k: overrides.pop(k) for k in list(overrides) if k in sim_keys}
    if quick:
        box = box or 40
        orientation = OrientationModel(n_particles=8000, n_views=500)
        sim = SimulationSettings(box=box, voxel_size=2.5, seed=seed, orientation=orientation)
        base = DemoSettings(
            simulation=sim,
            epochs=2,
            n_subvolume=24,
            cube_size=16,
            net_width=8,
            net_depth=2,
            batch_size=4,
            predict_crop_size=40,
            n_directions=64,
        )
    else:
        box = box or 64
        sim = SimulationSettings(box=box, seed=seed)
        base = DemoSettings(simulation=sim)
    sim = base.simulation
    if orientation_over:
        sim = replace(sim, orientation=replace(sim.orientation, **orientation_over))
    if sim_over:
        sim = replace(sim, **sim_over)
    return replace(base, simulation=sim, **overrides)


# --------------------------------------------------------------------------------------------
# metrics against the truth


def first_crossings(curves: np.ndarray, threshold: float, min_shell: int = 5) -> np.ndarray:
    """Fractional shell of the first crossing below ``threshold`` for each curve (vectorised).

    Parameters
    ----------
    curves : np.ndarray
        [d, n_shells] FSC per shell, shell 0 = DC.
    threshold : float
    min_shell : int
        Shells below it are ignored (a 20° cone holds < 20 voxels there: single voxels decide).

    Returns
    -------
    np.ndarray
        float64 [d]: crossing shell, linearly interpolated; the last shell when never crossed.
    """
    from spIsoNet.fsc3d import first_crossings as find

    return find(curves, threshold, min_shell=min_shell, clip_to_min_shell=True).shell


def truth_metrics(
    volume: np.ndarray,
    truth: np.ndarray,
    voxel_size: float,
    *,
    mask: np.ndarray | None = None,
    n_directions: int = 128,
    cone_angle: float = 20.0,
    threshold: float = TRUTH_THRESHOLD,
    with_sphericity: bool = True,
) -> dict:
    """How well a map agrees with the ground truth, globally and per direction.

    Parameters
    ----------
    volume, truth : np.ndarray
        float [n, n, n] map and ground truth (same grid).
    voxel_size : float
        Å.
    mask : np.ndarray, optional
        Soft mask applied to both before the FFTs.
    n_directions : int
        Fibonacci directions on a hemisphere.
    cone_angle : float
        Cone half-angle of the directional FSC, degrees.
    threshold : float
        FSC-to-truth threshold (0.5 ↔ half-map 0.143).
    with_sphericity : bool
        Also compute ``spIsoNet.fsc3d.anisotropy_summary`` of map vs truth (sphericity at its
        0.143 convention).

    Returns
    -------
    dict
        ``global_res`` (Å), ``dir_res_worst``/``dir_res_best``/``dir_res_mean``/``dir_res_std``
        (Å), ``worst_direction``/``best_direction`` (z, y, x), ``sphericity`` (or None), and the
        arrays ``global_fsc`` [n//2+1], ``directions`` [d, 3], ``curves`` [d, n//2+1],
        ``dir_res`` [d] (Å) for plots.
    """
    from spIsoNet.fourier import fsc_curve, resolution_at, shell_to_resolution
    from spIsoNet.fsc3d import directional_fsc

    n = volume.shape[0]
    global_fsc = np.asarray(fsc_curve(volume, truth, mask), dtype=np.float64)
    directions, curves = directional_fsc(
        volume, truth, voxel_size, n_directions=n_directions, cone_angle=cone_angle, mask=mask
    )
    shells = first_crossings(curves, threshold)
    dir_res = np.asarray(shell_to_resolution(shells, n, voxel_size), dtype=np.float64)
    worst, best = int(np.argmax(dir_res)), int(np.argmin(dir_res))
    sphericity = None
    if with_sphericity:
        sphericity = _sphericity(volume, truth, voxel_size, mask)
    return {
        "global_res": float(resolution_at(global_fsc, n, voxel_size, threshold).angstrom),
        "dir_res_worst": float(dir_res[worst]),
        "dir_res_best": float(dir_res[best]),
        "dir_res_mean": float(dir_res.mean()),
        "dir_res_std": float(dir_res.std()),
        "worst_direction": [round(float(v), 4) for v in directions[worst]],
        "best_direction": [round(float(v), 4) for v in directions[best]],
        "sphericity": sphericity,
        "global_fsc": global_fsc,
        "directions": np.asarray(directions),
        "curves": np.asarray(curves),
        "dir_res": dir_res,
    }


def _sphericity(volume, truth, voxel_size, mask) -> float | None:
    from spIsoNet.fsc3d import anisotropy_summary

    return float(anisotropy_summary(volume, truth, voxel_size, mask=mask).sphericity)


def half_map_summary(half1, half2, voxel_size, mask) -> dict:
    """The user's view without a truth: anisotropy of the half-map pair (0.143 criterion)."""
    from spIsoNet.fsc3d import anisotropy_summary

    return _jsonable(anisotropy_summary(half1, half2, voxel_size, mask=mask).to_json())


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if not math.isfinite(v) else round(v, 5)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _scalars(metrics: dict) -> dict:
    return {k: _jsonable(v) for k, v in metrics.items() if not isinstance(v, np.ndarray)}


def improvement(before: dict, after: dict) -> dict:
    """Relative changes (positive = better) of the worst/best directional and global resolution."""

    def gain(key: str) -> float:
        return (before[key] - after[key]) / before[key]

    return {
        "worst_direction_gain": gain("dir_res_worst"),
        "best_direction_gain": gain("dir_res_best"),
        "global_gain": gain("global_res"),
        "mean_direction_gain": gain("dir_res_mean"),
    }


# --------------------------------------------------------------------------------------------
# the demo


def write_case(case: SimulatedCase, output_dir: Path) -> dict[str, str]:
    """Write truth, half-maps and mask as MRC files; returns name → path."""
    from spIsoNet.io import write_map

    files = {
        "truth": output_dir / "truth.mrc",
        "half1": output_dir / "half1.mrc",
        "half2": output_dir / "half2.mrc",
        "mask": output_dir / "mask.mrc",
    }
    for name, path in files.items():
        write_map(path, getattr(case, name), case.voxel_size)
    return {k: str(v) for k, v in files.items()}


def run_demo(
    output_dir: str | os.PathLike = "demo",
    settings: DemoSettings | None = None,
    *,
    fsc3d_only: bool = False,
    figures: bool = True,
    show_progress: bool = True,
) -> dict:
    """Simulate, correct and evaluate; write MRCs, figures and ``demo_report.json``.

    Parameters
    ----------
    output_dir : path
        Created if missing; the demo's files are (re)written there.
    settings : DemoSettings, optional
        Default: :func:`default_settings`.
    fsc3d_only : bool
        Stop after the FSC3D and the before-metrics (no training).
    figures : bool
        Write the PNG figures.
    show_progress : bool
        tqdm bars during training.

    Returns
    -------
    dict
        The report (also written to ``<output_dir>/demo_report.json``).
    """
    from spIsoNet.fsc3d import compute_fsc3d
    from spIsoNet.io import write_map, write_text_atomic

    settings = settings or default_settings()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = settings.simulation
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    t0 = time.perf_counter()
    o = sim.orientation
    log.info(
        "simulating box %d, %.2f Å/voxel: %d particles per half, %.0f%% within %.0f° of axis %s, "
        "SNR %.4g, seed %d",
        sim.box, sim.voxel_size, o.n_particles, 100 * o.fraction_preferred, o.cone_angle,
        tuple(o.axis), sim.snr, sim.seed,
    )  # fmt: skip
    case = simulate_case(sim)
    files = write_case(case, out)
    timings["simulate"] = time.perf_counter() - t0
    log.info("wrote %s", ", ".join(Path(p).name for p in files.values()))

    t0 = time.perf_counter()
    fsc = compute_fsc3d(
        case.half1, case.half2, case.voxel_size, mask=case.mask, cone_angle=settings.fsc3d_cone
    )
    fsc3d_path = out / "FSC3D.mrc"
    write_map(fsc3d_path, fsc.volume, case.voxel_size)
    files["fsc3d"] = str(fsc3d_path)
    halves_before = half_map_summary(case.half1, case.half2, case.voxel_size, case.mask)
    timings["fsc3d"] = time.perf_counter() - t0
    from spIsoNet.fourier import fsc_curve, resolution_at

    half_fsc = fsc_curve(case.half1, case.half2, case.mask)
    limit_res = float(
        resolution_at(half_fsc, sim.box, case.voxel_size, settings.limit_fsc).angstrom
    )
    log.info(
        "half-map FSC: 0.143 at %.2f Å, %.3g at %.2f Å (limit_res of the correction)",
        fsc.limit_res, settings.limit_fsc, limit_res,
    )  # fmt: skip

    t0 = time.perf_counter()
    metric_args = {
        "mask": case.mask,
        "n_directions": settings.n_directions,
        "cone_angle": settings.metric_cone,
    }
    before_map = 0.5 * (case.half1 + case.half2)
    before = truth_metrics(before_map, case.truth, case.voxel_size, **metric_args)
    timings["metrics"] = time.perf_counter() - t0
    log.info(
        "input vs truth: worst direction %.2f Å, best %.2f Å, global %.2f Å (FSC=%.1f)",
        before["dir_res_worst"], before["dir_res_best"], before["global_res"], TRUTH_THRESHOLD,
    )  # fmt: skip

    report: dict = {
        "what": "spIsoNet demo: simulated preferred-orientation case with known ground truth",
        "simulation": sim.to_dict(),
        "demo_settings": _jsonable(
            {k: v for k, v in asdict(settings).items() if k != "simulation"}
        ),
        "files": files,
        "limit_res": limit_res,
        "half_map_res_0143": float(fsc.limit_res),
        "truth_threshold": TRUTH_THRESHOLD,
        "half_maps_before": halves_before,
        "before": _scalars(before),
    }
    after = None
    corrected_map = None
    if not fsc3d_only:
        from spIsoNet.engine.pipeline import correct_maps

        t0 = time.perf_counter()
        engine = settings.engine_settings(seed=sim.seed, show_progress=show_progress)
        result = correct_maps(
            case.half1,
            case.half2,
            case.voxel_size,
            fsc3d_volume=fsc.volume,
            limit_res=limit_res,
            mask=case.mask,
            settings=engine,
            output_dir=out,
            model_name="demo_model",
        )
        timings["correct"] = time.perf_counter() - t0
        for i, corrected in enumerate(result.corrected, start=1):
            path = out / f"corrected_half{i}.mrc"
            write_map(path, corrected, case.voxel_size)
            files[f"corrected_half{i}"] = str(path)
        corrected_map = 0.5 * (result.corrected[0] + result.corrected[1])
        t0 = time.perf_counter()
        after = truth_metrics(corrected_map, case.truth, case.voxel_size, **metric_args)
        halves_after = half_map_summary(
            result.corrected[0], result.corrected[1], case.voxel_size, case.mask
        )
        timings["metrics"] += time.perf_counter() - t0
        gains = improvement(before, after)
        report.update(
            {
                "after": _scalars(after),
                "half_maps_after": halves_after,
                "improvement": _jsonable(gains),
                "targets": {
                    "worst_direction_gain_min": 0.15,
                    "best_direction_loss_max": 0.03,
                    "worst_direction_met": bool(gains["worst_direction_gain"] >= 0.15),
                    "best_direction_met": bool(gains["best_direction_gain"] >= -0.03),
                },
                "engine": {
                    "device": result.device,
                    "loss_history": _jsonable(result.loss_history),
                    "timings": _jsonable(result.timings),
                    "model": str(result.model_path) if result.model_path else None,
                },
            }
        )

    if figures:
        t0 = time.perf_counter()
        report["figures"] = make_figures(
            out, case, before_map, corrected_map, before, after, fsc.volume
        )
        timings["figures"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    report["timings"] = _jsonable(timings)
    report["threads"] = _threads()
    write_text_atomic(out / "demo_report.json", json.dumps(report, indent=2) + "\n")
    print(format_summary(report))
    return report


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def format_summary(report: dict) -> str:
    """Human-readable before/after table of a demo report."""
    b = report["before"]
    a = report.get("after")
    thr = report["truth_threshold"]
    lines = [
        "",
        f"spIsoNet demo — FSC to the ground truth (threshold {thr}; 20° cones, "
        f"{report['demo_settings']['n_directions']} directions)",
        f"{'':34s}{'input':>10s}{'corrected':>12s}{'change':>10s}",
    ]
    rows = [
        ("worst direction resolution (Å)", "dir_res_worst"),
        ("best direction resolution (Å)", "dir_res_best"),
        ("mean directional resolution (Å)", "dir_res_mean"),
        ("global resolution (Å)", "global_res"),
        ("sphericity (map vs truth 3DFSC)", "sphericity"),
    ]
    for label, key in rows:
        before = b.get(key)
        after = a.get(key) if a else None
        fmt = (lambda v: f"{v:10.3f}") if key == "sphericity" else (lambda v: f"{v:10.2f}")
        text_b = fmt(before) if before is not None else f"{'n/a':>10s}"
        text_a = fmt(after) + "  " if after is not None else f"{'-':>12s}"
        change = ""
        if before is not None and after is not None and before:
            change = f"{100 * (after - before) / before:+9.1f}%"
        lines.append(f"{label:34s}{text_b}{text_a:>12s}{change}")
    if a:
        t = report["targets"]
        g = report["improvement"]
        lines.append(
            f"worst direction improved by {100 * g['worst_direction_gain']:.1f}% "
            f"(target ≥ 15%: {'met' if t['worst_direction_met'] else 'NOT met'}); "
            f"best direction changed by {-100 * g['best_direction_gain']:+.1f}% "
            f"(target ≤ +3%: {'met' if t['best_direction_met'] else 'NOT met'})"
        )
    total = report["timings"].get("total")
    if total is not None:
        lines.append(f"total time {total / 60:.1f} min on {report['threads']} CPU thread(s)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# figures


def make_figures(
    output_dir: Path,
    case: SimulatedCase,
    input_map: np.ndarray,
    corrected_map: np.ndarray | None,
    before: dict,
    after: dict | None,
    fsc3d_volume: np.ndarray | None = None,
) -> dict[str, str]:
    """Central slices, FSC-to-truth curves and the directional-resolution histogram.

    Returns
    -------
    dict
        Figure name → path (``demo_slices.png``, ``demo_fsc.png``, ``demo_directional.png``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spIsoNet.io import atomic_output

    output_dir = Path(output_dir)
    n = case.truth.shape[0]
    vs = case.voxel_size
    paths = {}

    # 1. central slices: rows truth / input / corrected; columns YX (view along the preferred
    #    axis z), ZX and ZY (the smeared direction z is vertical).
    rows = [("truth", case.truth), ("input (half-map average)", input_map)]
    if corrected_map is not None:
        rows.append(("corrected", corrected_map))
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for r, (name, vol) in enumerate(rows):
        v = vol * case.mask
        lo, hi = np.percentile(v, [1, 99.8])
        for c, (title, img) in enumerate(
            [("Y-X slice (z = n/2)", v[n // 2]), ("Z-X slice", v[:, n // 2]),
             ("Z-Y slice", v[:, :, n // 2])]
        ):  # fmt: skip
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=10)
            if c == 0:
                ax.set_ylabel(name, fontsize=10)
    fig.suptitle("Central slices (preferred view axis = z: smearing is vertical in Z-X, Z-Y)")
    fig.tight_layout()
    paths["slices"] = _save(fig, output_dir / "demo_slices.png", atomic_output, plt)

    # 2. FSC to truth: global and worst/best directions, before and after.
    shells = np.arange(len(before["global_fsc"]))
    freq = shells / (n * vs)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = [("input", before, "tab:red")]
    if after is not None:
        series.append(("corrected", after, "tab:blue"))
    for name, m, colour in series:
        ax.plot(freq, m["global_fsc"], color=colour, lw=2, label=f"{name}: global")
        worst = int(np.argmax(m["dir_res"]))
        best = int(np.argmin(m["dir_res"]))
        ax.plot(freq, m["curves"][worst], color=colour, ls="--", label=f"{name}: worst direction")
        ax.plot(freq, m["curves"][best], color=colour, ls=":", label=f"{name}: best direction")
    ax.axhline(TRUTH_THRESHOLD, color="gray", lw=0.8)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC to ground truth")
    ax.set_ylim(-0.1, 1.02)
    ax.set_xlim(0, freq[-1])
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("FSC between map and ground truth (20° cones for directions)")
    fig.tight_layout()
    paths["fsc"] = _save(fig, output_dir / "demo_fsc.png", atomic_output, plt)

    # 3. histogram of directional resolutions (+ FSC3D central slice if given).
    ncols = 2 if fsc3d_volume is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 4), squeeze=False)
    ax = axes[0, 0]
    values = [before["dir_res"]] + ([after["dir_res"]] if after is not None else [])
    lo = min(float(v.min()) for v in values)
    hi = max(float(v.max()) for v in values)
    bins = np.linspace(lo * 0.95, hi * 1.05, 25)
    ax.hist(before["dir_res"], bins=bins, alpha=0.6, color="tab:red", label="input")
    if after is not None:
        ax.hist(after["dir_res"], bins=bins, alpha=0.6, color="tab:blue", label="corrected")
    ax.set_xlabel(f"directional resolution vs truth (Å, FSC={TRUTH_THRESHOLD})")
    ax.set_ylabel("directions")
    ax.legend()
    if fsc3d_volume is not None:
        ax = axes[0, 1]
        ax.imshow(fsc3d_volume[:, :, n // 2], cmap="viridis", vmin=0, vmax=1, origin="lower")
        ax.set_title("half-map FSC3D, kz-ky plane (kz vertical)", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    paths["directional"] = _save(fig, output_dir / "demo_directional.png", atomic_output, plt)
    return paths


def _save(fig, path: Path, atomic_output, plt) -> str:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return str(path)
