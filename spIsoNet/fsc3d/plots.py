"""Figure of the ``fsc3d`` report (matplotlib, imported only when drawing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_report(report: dict, arrays: dict, path: str | Path) -> None:
    """3DFSC-style figure: FSC curves with ±1σ directional band and resolution histogram, and
    the central slices of the FSC3D volume. Written with matplotlib's Agg backend to ``path``
    (the caller handles atomic renaming)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freq = arrays["frequency"]
    dirs = arrays["directional"]
    mean, std = dirs.mean(axis=0), dirs.std(axis=0)
    fig = plt.figure(figsize=(11, 8.5))
    grid = fig.add_gridspec(2, 3, height_ratios=[1.35, 1.0])
    ax = fig.add_subplot(grid[0, :])
    hist_ax = ax.twinx()
    res = arrays["resolutions"]
    bins = np.linspace(0, freq[-1], 41)
    hist_ax.hist(1.0 / res, bins=bins, color="tab:green", alpha=0.35, label="directional res.")
    hist_ax.set_ylabel("axes per bin (histogram of directional 0.143 resolution)")
    ax.fill_between(
        freq, mean - std, mean + std, color="tab:orange", alpha=0.3, label="directional FSC ±1σ"
    )
    ax.plot(freq, mean, color="tab:orange", lw=1, label="directional FSC mean")
    ax.plot(freq, arrays["unmasked"], color="tab:blue", lw=1.5, label="global FSC unmasked")
    if arrays.get("corrected") is not None:
        ax.plot(
            freq,
            arrays["corrected"],
            color="tab:red",
            lw=1.5,
            label="global FSC masked (corrected)",
        )
    ax.axhline(0.143, color="grey", ls="--", lw=0.8)
    ax.axhline(0.5, color="grey", ls=":", lw=0.8)
    ax.set_xlim(0, freq[-1])
    ax.set_ylim(-0.1, 1.05)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    d = report["directional"]
    ax.set_title(
        f"3D FSC: sphericity {report['sphericity']['value']:.3f}, directional 0.143 resolution "
        f"{d['res_min']:.2f}–{d['res_max']:.2f} Å (cone {d['cone_angle']:g}°), "
        f"cFAR (SIMPLE-style) {report['cfar_simple_style']['value']:.2f}",
        fontsize=10,
    )
    handles = ax.get_legend_handles_labels()
    hist_handles = hist_ax.get_legend_handles_labels()
    ax.legend(
        handles[0] + hist_handles[0], handles[1] + hist_handles[1], loc="upper right", fontsize=8
    )
    plane_z, plane_y, plane_x = arrays["slices"]
    n = plane_z.shape[0]
    c = n // 2
    extent_f = (-(c) / (n * report["voxel_size"]), (n - 1 - c) / (n * report["voxel_size"]))
    extent = (extent_f[0], extent_f[1], extent_f[0], extent_f[1])
    slices = (
        ("z = 0 (y vs x)", plane_z),
        ("y = 0 (z vs x)", plane_y),
        ("x = 0 (z vs y)", plane_x),
    )
    image = None
    for col, (title, plane) in enumerate(slices):
        sub = fig.add_subplot(grid[1, col])
        image = sub.imshow(plane, origin="lower", cmap="viridis", vmin=0.0, vmax=1.0, extent=extent)
        sub.set_title(f"FSC3D central slice {title}", fontsize=9)
        sub.set_xlabel("1/Å", fontsize=8)
        sub.tick_params(labelsize=7)
    fig.colorbar(image, ax=fig.axes[-3:], shrink=0.8, label="conical FSC")
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
