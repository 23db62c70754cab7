"""Correction of the half-maps inside a RELION iteration (arrays in, arrays out).

Follows the published wrapper's recipe, done in-process with the toolkit:

1. whitening of each plain map between ``ISONET_WHITENING_LOW`` Å and the current resolution
   (only when that resolution is finer than ``ISONET_WHITENING_LOW``),
2. keep-lowres: frequencies below ``--ini_high`` from the initial reference,
3. 3D FSC of the two maps (or of the previous iteration's half-maps when a half is corrected on
   its own), FSC weighting of each map by the 3D FSC's shell average,
4. noise2noise training and prediction (:func:`spIsoNet.engine.pipeline.correct_maps`),
5. low-pass at the current resolution.

No file or environment access here except the engine's model checkpoint in ``output_dir``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spIsoNet import fourier
from spIsoNet.log import get_logger
from spIsoNet.timing import stage_timer

from .settings import ENGINE_NAMES, PluginSettings

log = get_logger("relion")


@dataclass
class CorrectionOutcome:
    """Corrected maps (same order as the inputs) with timings (s) and metrics."""

    corrected: list[np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)
    metrics_before: dict | None = None
    metrics_after: dict | None = None
    fsc_after: np.ndarray | None = None
    device: str = ""
    model_path: str | None = None


def soft_sphere(n: int, radius: float, edge: float = 5.0) -> np.ndarray:
    """Soft spherical mask ``[n, n, n]`` (1 inside ``radius`` voxels, cosine edge)."""
    c = np.arange(n, dtype=np.float32) - n // 2
    r = np.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)
    phase = np.clip((r - radius) / max(edge, 1e-6), 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * phase)).astype(np.float32)


def band_limited(
    maps: list[np.ndarray], voxel_size: float, resolution: float
) -> tuple[list[np.ndarray], float]:
    """Fourier-crop maps to the band they carry, for metrics that stop where the data stop.

    Parameters
    ----------
    maps
        Maps ``[n, n, n]``.
    voxel_size
        Å per voxel.
    resolution
        Finest resolution (Å) the maps carry (e.g. the current size's Nyquist); the maps are
        cropped to the smallest even box ``m`` whose Nyquist reaches it.

    Returns
    -------
    (cropped maps ``[m, m, m]`` float32, their voxel size ``n · voxel_size / m``)
    """
    n = maps[0].shape[0]
    m = max(8, 2 * int(np.ceil(n * voxel_size / resolution - 1e-9)))  # Nyquist shell ≥ band
    if m >= n:
        return maps, voxel_size
    keep = np.r_[0 : m // 2, n - m // 2 : n]
    out = []
    for volume in maps:
        spectrum = fourier.rfft3(volume)[np.ix_(keep, keep, np.arange(m // 2 + 1))]
        out.append(fourier.irfft3(spectrum, m) * np.float32((m / n) ** 3))
    return out, n * voxel_size / m


def prepare_map(
    volume: np.ndarray,
    voxel_size: float,
    *,
    limit_res: float,
    settings: PluginSettings,
    mask: np.ndarray | None,
    keep_lowres: bool,
    ini_high: float | None,
    initial_reference: np.ndarray | None,
) -> tuple[np.ndarray, list[str]]:
    """Whitening and keep-lowres of one plain map; returns the map and what was done."""
    done = []
    out = volume
    if settings.whitening and limit_res < settings.whitening_low:
        out = fourier.whiten(out, voxel_size, settings.whitening_low, limit_res, mask=mask)
        done.append(f"whitened {settings.whitening_low:g}–{limit_res:.2f} Å")
    if keep_lowres and ini_high is not None and initial_reference is not None:
        out = fourier.combine_maps(initial_reference, out, ini_high, voxel_size, mask=mask)
        done.append(f"initial reference kept below {ini_high:g} Å")
    return out.astype(np.float32, copy=False), done


def correct_halves(
    maps: list[np.ndarray],
    voxel_size: float,
    *,
    limit_res: float,
    settings: PluginSettings,
    engine_settings,
    output_dir: str | Path,
    model_name: str,
    mask: np.ndarray | None = None,
    keep_lowres: bool = False,
    ini_high: float | None = None,
    initial_references: list[np.ndarray | None] | None = None,
    fsc_pair: tuple[np.ndarray, np.ndarray] | None = None,
    pretrained_model: str | None = None,
) -> CorrectionOutcome:
    """Correct one or two plain half-maps.

    Parameters
    ----------
    maps
        ``[half1, half2]`` (joint) or ``[half]`` (a half on its own), each ``[n, n, n]``.
    voxel_size
        Å per voxel.
    limit_res
        Current resolution (Å): whitening limit, 3D FSC / training limit, final low-pass.
    settings
        Plugin settings (whitening, FSC weighting, low-pass switches).
    engine_settings
        :class:`spIsoNet.engine.pipeline.EngineSettings` for the training.
    output_dir, model_name
        Where the engine keeps the model checkpoint.
    mask
        Soft mask or None.
    keep_lowres, ini_high, initial_references
        Keep the initial reference (one per map, or None) below ``ini_high`` Å.
    fsc_pair
        Two maps to compute the 3D FSC from when only one map is given (the previous
        iteration's half-maps); default: ``maps``.
    pretrained_model
        Checkpoint to continue training from (previous iteration's model).
    """
    from spIsoNet.engine.pipeline import correct_maps
    from spIsoNet.fsc3d import compute_fsc3d

    timings: dict[str, float] = {}
    with stage_timer(timings, "pre-processing"):
        refs = initial_references or [None] * len(maps)
        prepared = []
        steps: list[str] = []
        for volume, reference in zip(maps, refs):
            out, done = prepare_map(
                volume,
                voxel_size,
                limit_res=limit_res,
                settings=settings,
                mask=mask,
                keep_lowres=keep_lowres,
                ini_high=ini_high,
                initial_reference=reference,
            )
            prepared.append(out)
            steps.extend(step for step in done if step not in steps)
    log.info("pre-processing: %s", "; ".join(steps) if steps else "none")

    with stage_timer(timings, "3D FSC"):
        pair = (prepared[0], prepared[1]) if len(prepared) == 2 else fsc_pair
        if pair is None:
            raise ValueError("a single map needs fsc_pair (two maps) for its 3D FSC")
        fsc3d = compute_fsc3d(pair[0], pair[1], voxel_size, mask=mask, limit_res=limit_res)

    if settings.fsc_weighting:
        with stage_timer(timings, "FSC weighting"):
            profile = fourier.fsc_weighting(np.asarray(fsc3d.global_fsc), mode="plain")
            prepared = [fourier.apply_radial_filter(m, profile, beyond=0.0) for m in prepared]

    with stage_timer(timings, "training+prediction"):
        result = correct_maps(
            prepared[0],
            prepared[1] if len(prepared) == 2 else None,
            voxel_size,
            fsc3d_volume=fsc3d.volume,
            limit_res=limit_res,
            mask=mask,
            settings=engine_settings,
            output_dir=output_dir,
            pretrained_model=pretrained_model,
            model_name=model_name,
            names=ENGINE_NAMES,
            loss_plot=None,
        )
    for stage, seconds in (result.timings or {}).items():
        timings[f"  engine {stage}"] = float(seconds)
    corrected = [np.asarray(c, dtype=np.float32) for c in result.corrected]
    if settings.lowpass:
        with stage_timer(timings, "low-pass"):
            corrected = [fourier.lowpass(c, limit_res, voxel_size) for c in corrected]
    return CorrectionOutcome(
        corrected=[np.ascontiguousarray(c, dtype=np.float32) for c in corrected],
        timings=timings,
        device=str(result.device),
        model_path=str(result.model_path) if result.model_path else None,
    )
