"""The demo run, stage by stage: simulate → FSC3D → measure → correct → measure → report."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from spIsoNet.demo.compare import TRUTH_THRESHOLD, improvement, truth_metrics
from spIsoNet.demo.report import format_summary, rounded, scalars, targets
from spIsoNet.demo.settings import REPORTED_ENGINE_FIELDS, DemoSettings, default_settings
from spIsoNet.log import get_logger
from spIsoNet.simulate import SimulatedCase, SimulationSettings, simulate_case
from spIsoNet.timing import stage_timer

__all__ = ["run_demo", "write_case"]

log = get_logger("demo")


def write_case(case: SimulatedCase, output_dir: Path) -> dict[str, str]:
    """Write truth, half-maps and mask as MRC files; returns name → path."""
    from spIsoNet.io import write_map

    files = {name: output_dir / f"{name}.mrc" for name in ("truth", "half1", "half2", "mask")}
    for name, path in files.items():
        write_map(path, getattr(case, name), case.voxel_size)
    return {k: str(v) for k, v in files.items()}


def _simulate(sim: SimulationSettings, out: Path) -> tuple[SimulatedCase, dict[str, str]]:
    o = sim.orientation
    log.info(
        "simulating box %d, %.2f Å/voxel: %d particles per half, %.0f%% within %.0f° of axis %s, "
        "SNR %.4g, seed %d",
        sim.box, sim.voxel_size, o.n_particles, 100 * o.fraction_preferred, o.cone_angle,
        tuple(o.axis), sim.snr, sim.seed,
    )  # fmt: skip
    case = simulate_case(sim)
    files = write_case(case, out)
    log.info("wrote %s", ", ".join(Path(p).name for p in files.values()))
    return case, files


def _fsc3d(case: SimulatedCase, settings: DemoSettings, out: Path, files: dict):
    """FSC3D of the half-maps (written as FSC3D.mrc) and the half-map anisotropy."""
    from spIsoNet.fsc3d import anisotropy_summary, compute_fsc3d
    from spIsoNet.io import write_map

    fsc = compute_fsc3d(
        case.half1, case.half2, case.voxel_size, mask=case.mask, cone_angle=settings.fsc3d_cone
    )
    path = out / "FSC3D.mrc"
    write_map(path, fsc.volume, case.voxel_size)
    files["fsc3d"] = str(path)
    halves = anisotropy_summary(case.half1, case.half2, case.voxel_size, mask=case.mask)
    return fsc, rounded(halves.to_json())


def _limit_res(case: SimulatedCase, limit_fsc: float, res_0143: float) -> float:
    """Resolution (Å) where the masked half-map FSC falls below ``limit_fsc``."""
    from spIsoNet.fourier import fsc_curve, resolution_at

    half_fsc = fsc_curve(case.half1, case.half2, case.mask)
    n = case.half1.shape[0]
    limit_res = float(resolution_at(half_fsc, n, case.voxel_size, limit_fsc).angstrom)
    log.info(
        "half-map FSC: 0.143 at %.2f Å, %.3g at %.2f Å (limit_res of the correction)",
        res_0143, limit_fsc, limit_res,
    )  # fmt: skip
    return limit_res


def _correct(case, fsc, limit_res: float, settings: DemoSettings, out: Path, show_progress: bool):
    from spIsoNet.engine.pipeline import correct_maps

    return correct_maps(
        case.half1,
        case.half2,
        case.voxel_size,
        fsc3d_volume=fsc.volume,
        limit_res=limit_res,
        mask=case.mask,
        settings=settings.run_engine_settings(show_progress=show_progress),
        output_dir=out,
        model_name="demo_model",
    )


def _write_corrected(result, case: SimulatedCase, out: Path, files: dict) -> None:
    from spIsoNet.io import write_map

    for i, corrected in enumerate(result.corrected, start=1):
        path = out / f"corrected_half{i}.mrc"
        write_map(path, corrected, case.voxel_size)
        files[f"corrected_half{i}"] = str(path)


def _report_before(
    settings: DemoSettings,
    files: dict,
    limit_res: float,
    res_0143: float,
    halves_before: dict,
    before: dict,
) -> dict:
    log.info(
        "input vs truth: worst direction %.2f Å, best %.2f Å, global %.2f Å (FSC=%.1f)",
        before["dir_res_worst"], before["dir_res_best"], before["global_res"], TRUTH_THRESHOLD,
    )  # fmt: skip
    return {
        "what": "spIsoNet demo: simulated preferred-orientation case with known ground truth",
        "simulation": settings.simulation.to_dict(),
        "demo_settings": rounded(settings.to_json()),
        "files": files,  # the corrected half-maps are added to it when written
        "limit_res": limit_res,
        "half_map_res_0143": float(res_0143),
        "truth_threshold": TRUTH_THRESHOLD,
        "half_maps_before": halves_before,
        "before": scalars(before),
    }


def _report_after(before: dict, after: dict, halves_after: dict, result) -> dict:
    gains = improvement(before, after)
    return {
        "after": scalars(after),
        "half_maps_after": halves_after,
        "improvement": rounded(gains),
        "targets": targets(gains),
        "engine": {
            "device": result.device,
            "loss_history": rounded(result.loss_history),
            "timings": rounded(result.timings),
            "model": str(result.model_path) if result.model_path else None,
        },
    }


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


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
        Default: :func:`spIsoNet.demo.default_settings`.
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
    from spIsoNet.io.jsonio import write_json

    settings = settings or default_settings()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    with stage_timer(timings, "total"):
        with stage_timer(timings, "simulate"):
            case, files = _simulate(settings.simulation, out)
        with stage_timer(timings, "fsc3d"):
            fsc, halves_before = _fsc3d(case, settings, out, files)
        limit_res = _limit_res(case, settings.limit_fsc, fsc.limit_res)
        measure = partial(
            truth_metrics,
            truth=case.truth,
            voxel_size=case.voxel_size,
            mask=case.mask,
            n_directions=settings.n_directions,
            cone_angle=settings.metric_cone,
        )
        with stage_timer(timings, "metrics"):
            input_map = 0.5 * (case.half1 + case.half2)
            before = measure(input_map)
        report = _report_before(settings, files, limit_res, fsc.limit_res, halves_before, before)
        after = corrected_map = None
        if not fsc3d_only:
            with stage_timer(timings, "correct"):
                result = _correct(case, fsc, limit_res, settings, out, show_progress)
            _write_corrected(result, case, out, files)
            with stage_timer(timings, "metrics"):
                corrected_map = 0.5 * (result.corrected[0] + result.corrected[1])
                after = measure(corrected_map)
                halves_after = _halves_after(result, case)
            report.update(_report_after(before, after, halves_after, result))
            if result.settings is not None:  # the sizes the device gave the open settings
                used = {k: getattr(result.settings, k) for k in REPORTED_ENGINE_FIELDS}
                report["demo_settings"].update(rounded(used))
        if figures:
            from spIsoNet.demo.figures import make_figures

            with stage_timer(timings, "figures"):
                report["figures"] = make_figures(
                    out, case, input_map, corrected_map, before, after, fsc.volume
                )
    report["timings"] = rounded(timings)
    report["threads"] = _threads()
    write_json(out / "demo_report.json", report)
    print(format_summary(report))
    return report


def _halves_after(result, case: SimulatedCase) -> dict:
    from spIsoNet.fsc3d import anisotropy_summary

    c1, c2 = result.corrected
    return rounded(anisotropy_summary(c1, c2, case.voxel_size, mask=case.mask).to_json())
