"""Anisotropy metrics of a map pair and the fsc3d report (JSON dictionary, text summary).

Metrics (docs/metrics.md §1–5): global FSC resolution at 0.143 and 0.5; directional resolution at
0.143 for Fibonacci axes (best / worst / mean / σ, best and worst axis, anisotropy ratio
worst/best); sphericity of the 0.143 surface of the FSC3D volume; cFAR (SIMPLE-style). The record
they fill is :class:`spIsoNet.fsc3d.metrics.AnisotropyMetrics`; the figure is drawn by
:mod:`spIsoNet.fsc3d.plots`.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from spIsoNet.fourier import masked_fsc_corrected, resolution_at, rfft3
from spIsoNet.fsc3d.conical import ConicalFSC, FSC3DResult
from spIsoNet.fsc3d.crossings import first_crossings
from spIsoNet.fsc3d.directions import fibonacci_axes
from spIsoNet.fsc3d.metrics import AnisotropyMetrics
from spIsoNet.fsc3d.sphericity import sphericity
from spIsoNet.log import get_logger

log = get_logger("fsc3d")

__all__ = [
    "DEFAULT_N_DIRECTIONS",
    "anisotropy_summary",
    "build_report",
    "directional_statistics",
    "format_summary",
    "min_reliable_shell",
]

#: directions used for directional resolution (SIMPLE uses 256 on the sphere; ours are axes)
DEFAULT_N_DIRECTIONS = 256
#: a cone must hold at least this many voxels (expected) for a shell to count in cFAR
CFAR_MIN_VOXELS = 10


def min_reliable_shell(cone_angle: float) -> int:
    """First shell whose double cone holds ≥ :data:`CFAR_MIN_VOXELS` voxels (expected)."""
    solid = 4.0 * math.pi * (1.0 - math.cos(math.radians(cone_angle)))
    return max(1, math.ceil(math.sqrt(CFAR_MIN_VOXELS / solid)))


def _cfar(curves: np.ndarray, cone_angle: float, threshold: float = 0.143) -> float:
    """Conical FSC area ratio, SIMPLE-style: min / max over axes of Σ cFSC(k)·k² before crossing.

    Shells whose double cone holds fewer than :data:`CFAR_MIN_VOXELS` voxels (expected
    ``2·2π(1 − cos θ)·k²``) are skipped, as SIMPLE skips sparse bins.
    """
    shells = np.arange(curves.shape[1], dtype=np.float64)
    expected = 4.0 * math.pi * (1.0 - math.cos(math.radians(cone_angle))) * shells**2
    below = curves < threshold
    below[:, : min_reliable_shell(cone_angle)] = False
    first = np.where(below.any(axis=1), np.argmax(below, axis=1), curves.shape[1])
    before = shells[None, :] < first[:, None]
    usable = before & (expected[None, :] >= CFAR_MIN_VOXELS)
    areas = np.sum(np.where(usable, curves * shells[None, :] ** 2, 0.0), axis=1)
    if areas.max() <= 0:
        return float("nan")
    return float(max(areas.min(), 0.0) / areas.max())


def directional_statistics(
    engine: ConicalFSC,
    voxel_size: float,
    *,
    cone_angle: float = 20.0,
    n_directions: int = DEFAULT_N_DIRECTIONS,
) -> dict:
    """Directional FSC curves and their 0.143 resolutions for Fibonacci axes.

    Returns
    -------
    dict
        ``axes [d, 3]``, ``curves [d, n//2+1]``, ``resolution [d]`` (Å), ``crossed [d]``,
        ``cfar``.
    """
    axes = fibonacci_axes(n_directions)
    curves = engine.directional(axes, cone_angle)
    crossings = first_crossings(curves, 0.143, min_shell=min_reliable_shell(cone_angle))
    return {
        "axes": axes,
        "curves": curves,
        "resolution": crossings.resolution(engine.n, voxel_size),
        "crossed": crossings.crossed,
        "cfar": _cfar(curves, cone_angle),
    }


def _summary_from(
    engine: ConicalFSC,
    voxel_size: float,
    directional: dict,
    sphericity_value: float,
    cone_angle: float,
) -> AnisotropyMetrics:
    n = engine.n
    res = directional["resolution"]
    best, worst = int(np.argmin(res)), int(np.argmax(res))
    g143 = resolution_at(engine.global_fsc, n, voxel_size, 0.143)
    g05 = resolution_at(engine.global_fsc, n, voxel_size, 0.5)
    return AnisotropyMetrics(
        global_res_0143=float(g143.angstrom),
        global_res_05=float(g05.angstrom),
        sphericity=float(sphericity_value),
        dir_res_best=float(res.min()),
        dir_res_worst=float(res.max()),
        dir_res_mean=float(res.mean()),
        dir_res_std=float(res.std()),
        best_direction=tuple(float(v) for v in directional["axes"][best]),
        worst_direction=tuple(float(v) for v in directional["axes"][worst]),
        cfar=float(directional["cfar"]),
        anisotropy_ratio=float(res.max() / res.min()),
        dir_not_crossed=int(np.count_nonzero(~directional["crossed"])),
        global_crossed_0143=bool(g143.crossed),
        cone_angle=float(cone_angle),
        n_directions=int(len(res)),
    )


def anisotropy_summary(
    map1: np.ndarray,
    map2: np.ndarray,
    voxel_size: float,
    *,
    mask: np.ndarray | None = None,
    cone_angle: float = 20.0,
    n_directions: int = DEFAULT_N_DIRECTIONS,
) -> AnisotropyMetrics:
    """Anisotropy metrics of two maps (half-maps, or a map against the truth/a reference).

    One pair of FFTs; conical sums shared by the directional curves and the sphericity volume.

    Parameters
    ----------
    map1, map2
        Maps ``[n, n, n]``.
    voxel_size
        Å.
    mask
        Optional soft mask multiplied into both maps (the global FSC is then the plain masked
        FSC, not phase-randomisation corrected).
    cone_angle
        Cone half-angle (degrees) for directional FSCs and the sphericity volume (3DFSC: 20).
    n_directions
        Fibonacci axes for directional resolution.

    Returns
    -------
    AnisotropyMetrics
        Global resolution at 0.143 and 0.5 (Å), sphericity, best / worst / mean / σ directional
        resolution (Å) and their axes, cFAR, anisotropy ratio, ...; ``.to_json()`` gives the
        dict the JSON reports store.
    """
    engine = ConicalFSC(map1, map2, mask=mask)
    directional = directional_statistics(
        engine, voxel_size, cone_angle=cone_angle, n_directions=n_directions
    )
    volume = engine.volume(cone_angle, engine.n)
    psi = sphericity(volume, 0.143, voxel_size=voxel_size)
    return _summary_from(engine, voxel_size, directional, psi, cone_angle)


def _fsc_warnings(name: str, fsc: np.ndarray) -> list[str]:
    warnings = []
    values = np.asarray(fsc)[1:]
    below = np.nonzero(values < 0.143)[0]
    if below.size == 0:
        warnings.append(f"{name} FSC never falls below 0.143 (resolution limited by Nyquist)")
    elif np.any(values[below[0] + 1 :] >= 0.143 + 0.1):
        warnings.append(f"{name} FSC rises above 0.143 again after its first crossing")
    return warnings


def _res_dict(fsc: np.ndarray, n: int, voxel_size: float) -> dict:
    out = {}
    for label, threshold in (("0143", 0.143), ("05", 0.5)):
        r = resolution_at(fsc, n, voxel_size, threshold)
        out[f"res_{label}"] = float(r.angstrom)
        out[f"crossed_{label}"] = bool(r.crossed)
    return out


def build_report(
    engine: ConicalFSC,
    result: FSC3DResult,
    half1: np.ndarray,
    half2: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    report_cone_angle: float = 20.0,
    n_directions: int = DEFAULT_N_DIRECTIONS,
    inputs: dict | None = None,
    release_engine: bool = False,
) -> tuple[dict, dict]:
    """Everything the fsc3d report shows.

    Parameters
    ----------
    engine
        The :class:`ConicalFSC` that produced ``result`` (spectra reused).
    result
        The FSC3D volume result.
    half1, half2, mask
        Maps (unmasked) and optional mask, for the unmasked and corrected masked global FSC.
    report_cone_angle
        Cone for directional FSCs, sphericity and cFAR (3DFSC convention: 20°).
    n_directions
        Fibonacci axes.
    inputs
        File names etc. copied into the report.
    release_engine
        Free the engine's per-voxel arrays once the conical statistics are done (lower peak
        memory; the engine cannot be queried afterwards).

    Returns
    -------
    report : dict
        JSON-ready report.
    arrays : dict
        Arrays for the plot (curves, resolutions, central slices of the volume).
    """
    t0 = time.perf_counter()
    n, p = engine.n, result.voxel_size
    frequency = np.arange(n // 2 + 1) / (n * p)
    curves: dict[str, list] = {"frequency_inv_angstrom": frequency.tolist()}
    global_part: dict = {}
    warnings: list[str] = []
    log.info("report: %d directional FSCs (cone %g°)", n_directions, report_cone_angle)
    directional = directional_statistics(
        engine, p, cone_angle=report_cone_angle, n_directions=n_directions
    )
    log.info("report: sphericity")
    if report_cone_angle == result.cone_angle and result.limit_shell >= (n - 1) // 2:
        sphericity_volume = result.volume
    else:  # the 0.143 surface can lie beyond limit_res in the best directions: use all shells
        sphericity_volume = engine.volume(report_cone_angle, n)
    psi = sphericity(sphericity_volume, 0.143, voxel_size=p)
    del sphericity_volume
    summary = _summary_from(engine, p, directional, psi, report_cone_angle)
    fsc3d_input_fsc = np.asarray(engine.global_fsc)
    if release_engine:  # the global-FSC step below needs several map-sized arrays of its own
        engine.release()
    log.info("report: global FSC%s", "" if mask is None else " (unmasked, masked, corrected)")
    if mask is None:
        unmasked = engine.global_fsc
    else:
        spectra = (rfft3(half1), rfft3(half2))
        masked = masked_fsc_corrected(
            half1, half2, mask, spectra=spectra, masked_fsc=engine.global_fsc
        )
        del spectra
        unmasked = masked.unmasked
        global_part["masked"] = _res_dict(masked.masked, n, p)
        global_part["masked_corrected"] = _res_dict(masked.corrected, n, p)
        global_part["masked_corrected"]["randomisation_shell"] = int(masked.randomisation_shell)
        curves["fsc_masked"] = masked.masked.tolist()
        curves["fsc_masked_corrected"] = masked.corrected.tolist()
        warnings += _fsc_warnings("masked corrected", masked.corrected)
    global_part["unmasked"] = _res_dict(unmasked, n, p)
    curves["fsc_unmasked"] = np.asarray(unmasked).tolist()
    warnings += _fsc_warnings("unmasked", unmasked)

    # the headline global resolution: masked and corrected when a mask is given, else unmasked
    headline = global_part["masked_corrected" if mask is not None else "unmasked"]
    summary = replace(
        summary,
        global_res_0143=headline["res_0143"],
        global_res_05=headline["res_05"],
        global_crossed_0143=headline["crossed_0143"],
    )
    dir_curves = directional["curves"]
    curves["directional_mean"] = dir_curves.mean(axis=0).tolist()
    curves["directional_std"] = dir_curves.std(axis=0).tolist()
    curves["fsc_fsc3d_input"] = fsc3d_input_fsc.tolist()
    if summary.dir_not_crossed:
        warnings.append(
            f"{summary.dir_not_crossed} directional FSCs never fall below 0.143 "
            "(their resolution is set to Nyquist)"
        )
    report = {
        "inputs": inputs or {},
        "box": int(n),
        "voxel_size": float(p),
        "masked": mask is not None,
        "fsc3d": {
            "output_cone_angle": float(result.cone_angle),
            "method": result.method,
            "limit_res": float(result.limit_res),
            "limit_shell": int(result.limit_shell),
        },
        "global_fsc": global_part,
        "directional": {
            "cone_angle": float(report_cone_angle),
            "n_directions": int(summary.n_directions),
            "threshold": 0.143,
            "res_min": summary.dir_res_best,
            "res_max": summary.dir_res_worst,
            "res_mean": summary.dir_res_mean,
            "res_std": summary.dir_res_std,
            "best_direction_zyx": list(summary.best_direction),
            "worst_direction_zyx": list(summary.worst_direction),
            "anisotropy_ratio": summary.anisotropy_ratio,
            "not_crossed": summary.dir_not_crossed,
            "resolutions": directional["resolution"].tolist(),
            "directions_zyx": directional["axes"].tolist(),
        },
        "sphericity": {"value": summary.sphericity, "threshold": 0.143},
        "cfar_simple_style": {"value": summary.cfar, "threshold": 0.143, "pass_above": 0.5},
        "summary": summary.to_json(),
        "curves": curves,
        "warnings": warnings,
    }
    report["timings"] = {"report_seconds": round(time.perf_counter() - t0, 3)}
    arrays = {
        "frequency": frequency,
        "unmasked": np.asarray(unmasked),
        "corrected": np.asarray(curves["fsc_masked_corrected"]) if mask is not None else None,
        "directional": dir_curves,
        "resolutions": directional["resolution"],
        "slices": _central_slices(result.volume),
    }
    return report, arrays


def _central_slices(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return copies of the central z, y and x planes of a centred volume."""
    c = volume.shape[0] // 2
    return volume[c].copy(), volume[:, c].copy(), volume[:, :, c].copy()


def format_summary(report: dict) -> str:
    """Human-readable multi-line summary of a report."""
    g = report["global_fsc"]
    d = report["directional"]
    lines = [
        f"Box {report['box']}, voxel {report['voxel_size']:.4g} Å; FSC3D "
        f"({report['fsc3d']['method']}, cone {report['fsc3d']['output_cone_angle']:g}°) "
        f"limited to {report['fsc3d']['limit_res']:.3f} Å",
        f"Global FSC unmasked:         0.143 → {g['unmasked']['res_0143']:.3f} Å, "
        f"0.5 → {g['unmasked']['res_05']:.3f} Å",
    ]
    if "masked_corrected" in g:
        m = g["masked_corrected"]
        lines.append(
            f"Global FSC masked corrected: 0.143 → {m['res_0143']:.3f} Å, "
            f"0.5 → {m['res_05']:.3f} Å (phase randomisation beyond shell "
            f"{m['randomisation_shell']})"
        )
    lines += [
        f"Directional resolution (0.143, {d['n_directions']} axes, cone {d['cone_angle']:g}°): "
        f"best {d['res_min']:.3f} Å, worst {d['res_max']:.3f} Å, "
        f"mean {d['res_mean']:.3f} ± {d['res_std']:.3f} Å, worst/best {d['anisotropy_ratio']:.2f}",
        "  best axis (z,y,x) = ({:+.3f}, {:+.3f}, {:+.3f}); ".format(*d["best_direction_zyx"])
        + "worst axis (z,y,x) = ({:+.3f}, {:+.3f}, {:+.3f})".format(*d["worst_direction_zyx"]),
        f"Sphericity (0.143): {report['sphericity']['value']:.3f}   "
        f"cFAR (SIMPLE-style): {report['cfar_simple_style']['value']:.3f}",
    ]
    lines += [f"WARNING: {w}" for w in report["warnings"]]
    return "\n".join(lines)
