"""3D FSC of two half-maps: the FSC3D volume, directional FSCs and anisotropy metrics.

Public API:

* :func:`compute_fsc3d` → :class:`FSC3DResult` (``.volume`` centred float32 ``[n, n, n]``,
  ``.limit_res``, ``.global_fsc``, ``.voxel_size``);
* :func:`directional_fsc` → ``(directions [d, 3], curves [d, n//2 + 1])``;
* :func:`anisotropy_summary` → :class:`AnisotropyMetrics` (global/directional resolution,
  sphericity, cFAR; ``.to_json()`` for reports, :func:`format_metrics` for text);
* :func:`first_crossings` → :class:`Crossings`, where curves first fall below a threshold.

:class:`ConicalFSC` is the engine behind them (two FFTs, then any number of cone queries).
Definitions of the metrics: ``docs/metrics.md``.
"""

from spIsoNet.fsc3d.conical import ConicalFSC, FSC3DResult, compute_fsc3d, directional_fsc
from spIsoNet.fsc3d.crossings import Crossings, first_crossings
from spIsoNet.fsc3d.directions import fibonacci_axes
from spIsoNet.fsc3d.metrics import AnisotropyMetrics, format_metrics
from spIsoNet.fsc3d.report import anisotropy_summary
from spIsoNet.fsc3d.sphericity import sphericity

__all__ = [
    "AnisotropyMetrics",
    "ConicalFSC",
    "Crossings",
    "FSC3DResult",
    "anisotropy_summary",
    "compute_fsc3d",
    "directional_fsc",
    "fibonacci_axes",
    "first_crossings",
    "format_metrics",
    "sphericity",
]
