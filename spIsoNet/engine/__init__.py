"""Correction engine: 3D U-Net trained with FSC3D-weighted consistency and rotation equivariance.

Public API: :class:`EngineSettings` (``spIsoNet.engine.settings``), :func:`correct_maps` and
:class:`CorrectionResult` (``spIsoNet.engine.pipeline``). Modules, one per stage: ``settings``,
``rotations``, ``fourier_weight``, ``unet``, ``losses``, ``data``, ``train``, ``predict``,
``checkpoint``, ``device``, ``distributed``, ``plots``, ``report``.
"""

from spIsoNet.engine.pipeline import CorrectionResult, correct_maps
from spIsoNet.engine.settings import EngineSettings

__all__ = ["CorrectionResult", "EngineSettings", "correct_maps"]
