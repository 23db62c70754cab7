"""The built-in demonstration: a simulated preferred-orientation case with known ground truth.

:func:`run_demo` simulates the case (:mod:`spIsoNet.simulate`), writes the truth, the two
half-maps and the mask as MRC files, computes the FSC3D (:mod:`spIsoNet.fsc3d`), corrects the
half-maps with the engine (:func:`spIsoNet.engine.pipeline.correct_maps`) using a CPU-sized
network, and measures the maps against the truth before and after: the directional FSC between
the map (average of the two halves) and the truth, in 20° cones along ≥ 100 directions,
resolution at FSC = 0.5 (the map-vs-truth equivalent of the half-map 0.143 criterion) in the worst
and best direction, plus the global FSC-to-truth and the sphericity of the map-vs-truth 3DFSC. It
writes figures, ``demo_report.json`` and prints a summary. ``spisonet.py demo`` and
``figures/make_figures.py`` are thin wrappers around it.

Modules, one per stage: ``settings`` (:class:`DemoSettings`: the simulation, an
:class:`~spIsoNet.engine.EngineSettings` and the demo's own fields), ``run`` (:func:`run_demo`),
``compare`` (metrics against the truth), ``report`` (the JSON report and the printed table),
``figures``.
"""

from spIsoNet.demo.compare import TRUTH_THRESHOLD, improvement, truth_metrics
from spIsoNet.demo.figures import make_figures
from spIsoNet.demo.report import format_summary
from spIsoNet.demo.run import run_demo, write_case
from spIsoNet.demo.settings import DemoSettings, default_settings, demo_engine_settings

__all__ = [
    "TRUTH_THRESHOLD",
    "DemoSettings",
    "default_settings",
    "demo_engine_settings",
    "format_summary",
    "improvement",
    "make_figures",
    "run_demo",
    "truth_metrics",
    "write_case",
]
