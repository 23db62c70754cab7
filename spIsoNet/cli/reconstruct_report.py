"""Run report of ``spisonet.py reconstruct``: what was run, where, how long, and what changed.

The before/after metrics compare the corrected half-maps with each other exactly as the input
half-maps are compared (global FSC, 3DFSC sphericity, best/worst directional resolution: the
:class:`spIsoNet.fsc3d.AnisotropyMetrics` of :func:`spIsoNet.fsc3d.anisotropy_summary`, stored
with ``.to_json()``). In the default noise2noise mode the two corrected halves come from one
network trained on both halves, so their FSC is not a gold-standard (independent) estimate; use
``--independent`` for that.
"""

from __future__ import annotations

import os
from pathlib import Path

from spIsoNet.fsc3d.metrics import AnisotropyMetrics, format_metrics
from spIsoNet.io.jsonio import write_json

__all__ = ["summary_lines", "write_report"]


def write_report(path: str | os.PathLike, report: dict) -> Path:
    """Write the report as strict JSON (numpy values made plain, NaN → null; atomic)."""
    return write_json(path, report)


def summary_lines(report: dict) -> list[str]:
    """Human-readable summary of a report (printed at the end of a run).

    Parameters
    ----------
    report : dict
        The run report; ``metrics_input`` / ``metrics_corrected`` are
        :meth:`AnisotropyMetrics.to_json` dicts when present.

    Returns
    -------
    list of str
    """
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
        columns = {
            "input": AnisotropyMetrics.from_json(before),
            "corrected": AnisotropyMetrics.from_json(after),
        }
        lines.append("metrics (half vs half):")
        lines += format_metrics(columns)
        if report.get("metrics_note"):
            lines.append(report["metrics_note"])
    return lines
