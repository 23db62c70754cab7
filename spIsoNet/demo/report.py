"""The demo report (``demo_report.json``) and its printed before/after table."""

from __future__ import annotations

import math

import numpy as np

from spIsoNet.demo.compare import TRUTH_ROWS

__all__ = ["TARGETS", "format_summary", "rounded", "scalars", "targets"]

#: the demo's quality targets: relative gain of the worst direction (at least), relative loss
#: of the best direction (at most)
TARGETS = {"worst_direction_gain_min": 0.15, "best_direction_loss_max": 0.03}


def rounded(value):
    """Plain JSON values with floats rounded to 5 decimals and non-finite floats as None."""
    if isinstance(value, np.ndarray):
        return [rounded(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if not math.isfinite(v) else round(v, 5)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, dict):
        return {str(k): rounded(v) for k, v in value.items()}
    return value


def scalars(metrics: dict) -> dict:
    """Return the non-array entries of :func:`spIsoNet.demo.compare.truth_metrics`, rounded."""
    return {k: rounded(v) for k, v in metrics.items() if not isinstance(v, np.ndarray)}


def targets(gains: dict) -> dict:
    """Whether the gains of :func:`spIsoNet.demo.compare.improvement` meet :data:`TARGETS`."""
    return {
        **TARGETS,
        "worst_direction_met": bool(
            gains["worst_direction_gain"] >= TARGETS["worst_direction_gain_min"]
        ),
        "best_direction_met": bool(
            gains["best_direction_gain"] >= -TARGETS["best_direction_loss_max"]
        ),
    }


def format_summary(report: dict) -> str:
    """Human-readable before/after table of a demo report."""
    from spIsoNet.fsc3d import format_metrics

    before, after = report["before"], report.get("after")
    lines = [
        "",
        f"spIsoNet demo — FSC to the ground truth (threshold {report['truth_threshold']}; 20° "
        f"cones, {report['demo_settings']['n_directions']} directions)",
    ]
    lines += format_metrics({"input": before, "corrected": after}, rows=TRUTH_ROWS)
    if after:
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
