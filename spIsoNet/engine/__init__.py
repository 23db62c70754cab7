"""Correction engine: 3D U-Net trained with FSC3D-weighted consistency and rotation equivariance.

Public API: :class:`EngineSettings`, :func:`correct_maps`, :class:`CorrectionResult`
(``spIsoNet.engine.pipeline``). Modules, one per stage: ``rotations``, ``fourier_weight``,
``unet``, ``losses``, ``data``, ``train``, ``predict``, ``checkpoint``, ``device``,
``distributed``, ``plots``, ``report``.
"""

from spIsoNet.engine.pipeline import CorrectionResult, EngineSettings, correct_maps

__all__ = ["CorrectionResult", "EngineSettings", "correct_maps"]
