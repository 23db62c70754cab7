"""``spisonet.py fsc``: global FSC between two maps, with resolutions and an optional plot."""

from __future__ import annotations

import argparse

from spIsoNet.cli.common import add_voxel_size_argument

HELP = "global FSC of two half-maps (unmasked, masked and phase-randomisation corrected)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``fsc`` on ``parser``."""
    parser.add_argument("half1", help="first half-map")
    parser.add_argument("half2", help="second half-map")
    parser.add_argument("--mask", default=None, help="soft mask (adds masked, corrected FSC)")
    parser.add_argument("--json", default=None, help="write the curves and resolutions here")
    parser.add_argument("--plot", default=None, help="write an FSC plot (PNG) here")
    add_voxel_size_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Print the FSC = 0.143 and 0.5 resolutions (Å) of each curve, write JSON/plot if asked.

    Returns
    -------
    int
        The exit code (0).
    """
    import numpy as np

    from spIsoNet import fourier
    from spIsoNet.cli.common import load_maps, load_optional_mask, output_path
    from spIsoNet.io import output_set
    from spIsoNet.io.jsonio import dumps

    half1, half2 = load_maps([args.half1, args.half2], args.voxel_size)
    mask = load_optional_mask(args.mask, half1)
    inputs = [args.half1, args.half2, args.mask]
    for extra in (args.json, args.plot):
        if extra:
            output_path(extra, inputs)
    n, apix = half1.box, half1.voxel_size
    curves: dict = {}
    if mask is None:
        curves["unmasked"] = fourier.fsc_curve(half1.data, half2.data)
    else:
        report = fourier.masked_fsc_corrected(half1.data, half2.data, mask)
        curves = {"unmasked": report.unmasked, "masked": report.masked}
        curves["corrected"] = report.corrected
    shells = np.arange(n // 2 + 1)
    summary: dict[str, object] = {"box": n, "voxel_size": apix}
    for name, curve in curves.items():
        for threshold in (0.143, 0.5):
            res = fourier.resolution_at(curve, n, apix, threshold)
            note = "" if res.crossed else " (never drops below; Nyquist)"
            print(f"{name:>9s} FSC={threshold:<5}: {res.angstrom:7.2f} Å{note}")
            summary[f"{name}_res_{threshold}"] = res.angstrom
        summary[f"{name}_fsc"] = [round(float(v), 5) for v in curve]
    summary["resolution_A"] = [float(fourier.shell_to_resolution(s, n, apix)) for s in shells[1:]]
    with output_set() as outputs:  # JSON and plot: both or neither
        if args.json:
            with outputs.stage(args.json) as tmp:
                tmp.write_text(dumps(summary, indent=1) + "\n", encoding="utf-8")
        if args.plot:
            with outputs.stage(args.plot) as tmp:
                _plot(curves, n, apix, tmp)
    return 0


def _plot(curves: dict, n: int, apix: float, path) -> None:
    """FSC curves over spatial frequency (1/Å) with a resolution (Å) axis, PNG to ``path``."""
    import numpy as np

    from spIsoNet.fsc3d.plots import add_resolution_axis, draw_thresholds, new_figure

    frequency = np.arange(n // 2 + 1) / (n * apix)
    fmax = float(frequency[-1])
    labels = {
        "unmasked": "unmasked",
        "masked": "masked",
        "corrected": "masked, phase-randomisation corrected",
    }
    fig = new_figure((6.5, 4.5))
    ax = fig.add_subplot()
    for name, curve in curves.items():
        ax.plot(frequency, curve, label=labels.get(name, name))
    draw_thresholds(ax, fmax)
    ax.set_xlim(0, fmax)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    ax.set_ylim(-0.1, 1.05)
    add_resolution_axis(ax, fmax)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
