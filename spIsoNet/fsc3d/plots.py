"""Figures of FSC curves: the ``fsc3d`` report and helpers shared with ``spisonet.py fsc``.

matplotlib is imported only inside the drawing functions (the commands pay for it only when they
draw), and figures are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas, without
pyplot's global state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: FSC thresholds drawn and labelled on every FSC plot: (value, line style, label)
THRESHOLDS = ((0.143, "--", "FSC = 0.143"), (0.5, ":", "FSC = 0.5"))


def new_figure(figsize: tuple[float, float]):
    """Create a matplotlib Figure on the Agg canvas (no pyplot, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def add_resolution_axis(ax, max_frequency: float) -> None:
    """Top axis with resolution tick labels (Å) over a spatial-frequency (1/Å) x axis.

    Parameters
    ----------
    ax
        matplotlib Axes whose x axis is spatial frequency in 1/Å, from 0 to ``max_frequency``.
    max_frequency
        Nyquist frequency (1/Å).
    """
    shown = resolution_ticks(max_frequency)
    top = ax.twiny()
    top.set_xlim(ax.get_xlim())
    top.set_xticks([1.0 / r for r in shown])
    top.set_xticklabels([f"{r:g}" for r in shown])
    top.set_xlabel("resolution (Å)")
    top.tick_params(labelsize=8)


def resolution_ticks(max_frequency: float, max_ticks: int = 12) -> list[float]:
    """Round resolutions (Å) for tick labels on a 0 … ``max_frequency`` (1/Å) axis.

    Taken from a list of round values, from Nyquist down, keeping ticks at least
    ``max_frequency / max_ticks`` apart in frequency so that labels do not overlap.
    """
    nice = [1000, 500, 200, 100, 50, 30, 20, 15, 10, 8, 6, 5, 4, 3.5, 3, 2.5, 2, 1.8, 1.6, 1.5]
    nice += [1.4, 1.3, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    gap = max_frequency / max_ticks
    shown: list[float] = []
    last = np.inf
    for r in sorted(nice):  # finest first
        f = 1.0 / r
        if f <= max_frequency * 1.0001 and last - f >= gap and f >= 0.5 * gap:
            shown.append(float(r))
            last = f
    return shown


def draw_thresholds(ax, max_frequency: float) -> None:
    """Horizontal 0.143 and 0.5 lines, each labelled at its right end."""
    for value, style, label in THRESHOLDS:
        ax.axhline(value, color="grey", ls=style, lw=0.8)
        ax.text(
            0.995 * max_frequency,
            value + 0.012,
            label,
            ha="right",
            va="bottom",
            fontsize=7,
            color="dimgrey",
        )


def plot_report(report: dict, arrays: dict, path: str | Path) -> None:
    """3DFSC-style figure of the ``fsc3d`` report, written as PNG to ``path``.

    Top: global FSC curves, the directional FSC mean ±1σ and the histogram of directional
    0.143 resolutions, over spatial frequency (1/Å, bottom) and resolution (Å, top). The
    directional curves are drawn only from the first shell whose cone holds enough voxels
    (:func:`spIsoNet.fsc3d.report.min_reliable_shell`): below it a 20° cone around an axis can
    hold no voxel at all, and its "FSC" is not a measurement. Bottom: central slices of the
    FSC3D volume with their colour bar. The caller handles atomic renaming.

    Parameters
    ----------
    report
        Report dictionary of :func:`spIsoNet.fsc3d.report.build_report`.
    arrays
        Its arrays: ``frequency [s]`` (1/Å), ``unmasked [s]``, ``corrected [s]`` or None,
        ``directional [d, s]``, ``resolutions [d]`` (Å), ``slices`` (three ``[n, n]`` planes).
    path
        Output PNG.
    """
    from spIsoNet.fsc3d.report import min_reliable_shell

    freq = arrays["frequency"]
    dirs = arrays["directional"]
    d = report["directional"]
    first = min(min_reliable_shell(d["cone_angle"]), len(freq) - 1)
    mean, std = dirs.mean(axis=0), dirs.std(axis=0)
    fmax = float(freq[-1])
    fig = new_figure((11, 8.5))
    grid = fig.add_gridspec(
        2, 3, height_ratios=[1.35, 1.0], hspace=0.42, wspace=0.35, top=0.88, bottom=0.07
    )
    ax = fig.add_subplot(grid[0, :])
    hist_ax = ax.twinx()
    res = arrays["resolutions"]
    bins = np.linspace(0, fmax, 41)
    hist_ax.hist(
        1.0 / res, bins=bins, color="tab:green", alpha=0.35, label="directional 0.143 res."
    )
    hist_ax.set_ylabel("axes per bin (directional 0.143 resolution)")
    band = slice(first, None)
    ax.fill_between(
        freq[band],
        np.clip(mean - std, -1.0, 1.0)[band],
        np.clip(mean + std, -1.0, 1.0)[band],
        color="tab:orange",
        alpha=0.3,
        label=f"directional FSC ±1σ (cone {d['cone_angle']:g}°, from shell {first})",
    )
    ax.plot(freq[band], mean[band], color="tab:orange", lw=1, label="directional FSC mean")
    ax.plot(freq, arrays["unmasked"], color="tab:blue", lw=1.5, label="global FSC unmasked")
    if arrays.get("corrected") is not None:
        ax.plot(
            freq,
            arrays["corrected"],
            color="tab:red",
            lw=1.5,
            label="global FSC masked (phase-randomisation corrected)",
        )
    draw_thresholds(ax, fmax)
    ax.set_xlim(0, fmax)
    ax.set_ylim(-0.1, 1.05)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    add_resolution_axis(ax, fmax)
    ax.set_title(
        f"3D FSC: sphericity {report['sphericity']['value']:.3f}, directional 0.143 resolution "
        f"{d['res_min']:.2f}–{d['res_max']:.2f} Å (cone {d['cone_angle']:g}°), "
        f"cFAR (SIMPLE-style) {report['cfar_simple_style']['value']:.2f}",
        fontsize=10,
    )
    handles, labels = ax.get_legend_handles_labels()
    hist_handles, hist_labels = hist_ax.get_legend_handles_labels()
    ax.legend(handles + hist_handles, labels + hist_labels, loc="lower left", fontsize=8)
    plane_z, plane_y, plane_x = arrays["slices"]
    n = plane_z.shape[0]
    c = n // 2
    p = report["voxel_size"]
    low, high = -c / (n * p), (n - 1 - c) / (n * p)
    extent = (low, high, low, high)
    slices = (
        ("z = 0", plane_z, "x", "y"),
        ("y = 0", plane_y, "x", "z"),
        ("x = 0", plane_x, "y", "z"),
    )
    image = None
    panels = []
    for col, (title, plane, horizontal, vertical) in enumerate(slices):
        sub = fig.add_subplot(grid[1, col])
        image = sub.imshow(plane, origin="lower", cmap="viridis", vmin=0.0, vmax=1.0, extent=extent)
        sub.set_title(f"FSC3D central slice {title}", fontsize=9)
        sub.set_xlabel(f"k{horizontal} (1/Å)", fontsize=8)
        sub.set_ylabel(f"k{vertical} (1/Å)", fontsize=8)
        sub.tick_params(labelsize=7)
        panels.append(sub)
    fig.colorbar(image, ax=panels, shrink=0.85, label="conical FSC (FSC3D value)")
    fig.savefig(path, dpi=110, format="png")
