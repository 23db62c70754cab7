"""Correction engine: 3D U-Net trained with FSC3D-weighted consistency and rotation equivariance.

Public API: :class:`EngineSettings` (``spIsoNet.engine.settings``), :func:`correct_maps` and
:class:`CorrectionResult` (``spIsoNet.engine.pipeline``). Modules, one per stage: ``settings``
(validated settings), ``plan`` (everything decided before training), ``launch`` (the process
modes), ``work`` (one process's training and prediction), ``pipeline`` (plan → run →
recombine), and below them ``rotations``, ``fourier_weight``, ``unet``, ``losses``, ``data``,
``train``, ``predict``, ``checkpoint``, ``device``, ``distributed``, ``plots``, ``report``.

The names are loaded on first use, so ``import spIsoNet.engine.settings`` does not import torch.
"""

from __future__ import annotations

import importlib

__all__ = ["CorrectionResult", "EngineSettings", "correct_maps"]

_HOMES = {
    "CorrectionResult": "spIsoNet.engine.pipeline",
    "EngineSettings": "spIsoNet.engine.settings",
    "correct_maps": "spIsoNet.engine.pipeline",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_HOMES))
