"""The anisotropy metrics record and its one formatter.

:class:`AnisotropyMetrics` is what :func:`spIsoNet.fsc3d.anisotropy_summary` returns for a pair
of maps (half-maps, corrected half-maps, or a map and a reference). Code reads its attributes
(``dir_res_worst`` / ``dir_res_best``: the worst and best directional resolution); the JSON files
keep their historical keys through :meth:`AnisotropyMetrics.to_json` (``dir_res_max`` /
``dir_res_min``). Definitions: ``docs/metrics.md``. Add a metric here (field, JSON key, row of
:data:`ANISOTROPY_ROWS`) and compute it in :mod:`spIsoNet.fsc3d.report`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

__all__ = ["ANISOTROPY_ROWS", "AnisotropyMetrics", "format_metrics"]

#: attribute → JSON key, where they differ (the files keep the keys they always had)
_JSON_KEYS = {"dir_res_best": "dir_res_min", "dir_res_worst": "dir_res_max"}


@dataclass(frozen=True)
class AnisotropyMetrics:
    """Global and directional resolution, sphericity and cFAR of a pair of maps.

    Attributes
    ----------
    global_res_0143, global_res_05 : float
        Global FSC resolution at 0.143 and 0.5, Å.
    sphericity : float
        Sphericity of the 0.143 surface of the 3DFSC volume (1 = isotropic).
    dir_res_best, dir_res_worst, dir_res_mean, dir_res_std : float
        Best (smallest), worst (largest), mean and standard deviation of the directional
        resolutions at 0.143, Å.
    best_direction, worst_direction : tuple of 3 floats
        Unit axes ``(z, y, x)`` of the best and worst directional resolution.
    cfar : float
        Conical FSC area ratio (SIMPLE-style), NaN when no direction has any area.
    anisotropy_ratio : float
        ``dir_res_worst / dir_res_best``.
    dir_not_crossed : int
        Directions whose FSC never falls below 0.143 (their resolution is Nyquist).
    global_crossed_0143 : bool
        Whether the global FSC falls below 0.143 before Nyquist.
    cone_angle : float
        Cone half-angle of the directional FSCs, degrees.
    n_directions : int
        Number of directions.
    """

    global_res_0143: float
    global_res_05: float
    sphericity: float
    dir_res_best: float
    dir_res_worst: float
    dir_res_mean: float
    dir_res_std: float
    best_direction: tuple[float, float, float]
    worst_direction: tuple[float, float, float]
    cfar: float
    anisotropy_ratio: float
    dir_not_crossed: int
    global_crossed_0143: bool
    cone_angle: float
    n_directions: int

    def to_json(self) -> dict:
        """Plain dict with the keys the JSON reports have always used (NaN stays NaN).

        Returns
        -------
        dict
            ``global_res_0143``, ``global_res_05``, ``sphericity``, ``dir_res_min``,
            ``dir_res_max``, ``dir_res_mean``, ``dir_res_std``, ``best_direction``,
            ``worst_direction`` (lists), ``cfar``, ``anisotropy_ratio``, ``dir_not_crossed``,
            ``global_crossed_0143``, ``cone_angle``, ``n_directions``.
        """
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[_JSON_KEYS.get(f.name, f.name)] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping) -> AnisotropyMetrics:
        """Inverse of :meth:`to_json` (``None`` read back as NaN)."""
        values = {}
        for f in fields(cls):
            value = data[_JSON_KEYS.get(f.name, f.name)]
            if isinstance(value, list):
                value = tuple(float(v) for v in value)
            elif value is None:
                value = math.nan
            values[f.name] = value
        return cls(**values)


#: rows of the anisotropy table: (label, attribute, format)
ANISOTROPY_ROWS: tuple[tuple[str, str, str], ...] = (
    ("global resolution FSC 0.143 (Å)", "global_res_0143", "{:.2f}"),
    ("global resolution FSC 0.5 (Å)", "global_res_05", "{:.2f}"),
    ("sphericity", "sphericity", "{:.3f}"),
    ("best direction resolution (Å)", "dir_res_best", "{:.2f}"),
    ("worst direction resolution (Å)", "dir_res_worst", "{:.2f}"),
    ("mean directional resolution (Å)", "dir_res_mean", "{:.2f}"),
)


def _cell(record: object | None, attribute: str, fmt: str) -> tuple[str, float | None]:
    if record is None:
        return "-", None
    if isinstance(record, Mapping):
        value = record.get(attribute)
    else:
        value = getattr(record, attribute, None)
    if value is None or not math.isfinite(float(value)):
        return "n/a", None
    return fmt.format(float(value)), float(value)


def format_metrics(
    columns: Mapping[str, object | None],
    rows: Sequence[tuple[str, str, str]] = ANISOTROPY_ROWS,
    *,
    label_width: int = 34,
) -> list[str]:
    """Table of metrics records side by side, with the relative change when there are two.

    Parameters
    ----------
    columns : mapping
        Column title → record (an :class:`AnisotropyMetrics`, any object with the attributes
        named in ``rows``, or a mapping with those keys; a None record shows as "-", missing or
        non-finite values as n/a), e.g. ``{"input": before, "corrected": after}``.
    rows : sequence of (label, attribute, format)
        What to show (default :data:`ANISOTROPY_ROWS`).
    label_width : int
        Width of the label column.

    Returns
    -------
    list of str
        Header line, then one line per row.
    """
    titles = list(columns)
    records = list(columns.values())
    change = len(records) == 2
    header = f"{'':{label_width}s}" + "".join(f"{t:>12s}" for t in titles)
    lines = [header + (f"{'change':>10s}" if change else "")]
    for label, attribute, fmt in rows:
        cells = [_cell(r, attribute, fmt) for r in records]
        line = f"{label:{label_width}s}" + "".join(f"{text:>12s}" for text, _ in cells)
        if change:
            (_, a), (_, b) = cells
            if a is not None and b is not None and a != 0:
                line += f"{100 * (b - a) / a:+9.1f}%"
        lines.append(line)
    return lines
