"""Run report of ``spisonet.py reconstruct``: what was run, where, how long, and what changed.

The before/after metrics compare the corrected half-maps with each other exactly as the input
half-maps are compared (global FSC, 3DFSC sphericity, best/worst directional resolution, via
:func:`spIsoNet.fsc3d.anisotropy_summary`). In the default noise2noise mode the two corrected
halves come from one network trained on both halves, so their FSC is not a gold-standard
(independent) estimate; use ``--independent`` for that.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from spIsoNet.io import write_text_atomic

METRIC_KEYS = (
    "global_res_0143",
    "global_res_05",
    "sphericity",
    "dir_res_min",
    "dir_res_max",
    "dir_res_mean",
)


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def half_map_metrics(
    map1: np.ndarray, map2: np.ndarray, voxel_size: float, mask: np.ndarray | None
) -> dict:
    """:func:`spIsoNet.fsc3d.anisotropy_summary` of a pair, as JSON-ready values."""
    from spIsoNet.fsc3d import anisotropy_summary

    return _plain(anisotropy_summary(map1, map2, voxel_size, mask=mask))


def write_report(path: str | os.PathLike, report: dict) -> Path:
    """Write the report as JSON (atomic)."""
    final = Path(path)
    write_text_atomic(final, json.dumps(_plain(report), indent=2) + "\n")
    return final


def summary_lines(report: dict) -> list[str]:
    """Human-readable summary of a report (printed at the end of a run)."""
    lines = [
        f"device: {report.get('device', '?')}; seed {report.get('seed')}; "
        f"limit_res {report.get('limit_res', float('nan')):.2f} Å",
        "timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.get("timings", {}).items()),
    ]
    losses = report.get("loss_history") or []
    if losses:
        lines.append(f"loss: first epoch {losses[0]:.4f}, last epoch {losses[-1]:.4f}")
    before, after = report.get("metrics_input"), report.get("metrics_corrected")
    if before and after:
        lines.append(f"{'metric (half vs half)':28s} {'input':>10s} {'corrected':>10s}")
        for key in METRIC_KEYS:
            if key in before and key in after:
                lines.append(f"{key:28s} {before[key]:10.3f} {after[key]:10.3f}")
        if report.get("metrics_note"):
            lines.append(report["metrics_note"])
    return lines
