"""The demo's figures: central slices, FSC-to-truth curves, directional-resolution histogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spIsoNet.demo.compare import TRUTH_THRESHOLD
from spIsoNet.simulate import SimulatedCase

__all__ = ["make_figures"]


def make_figures(
    output_dir: Path,
    case: SimulatedCase,
    input_map: np.ndarray,
    corrected_map: np.ndarray | None,
    before: dict,
    after: dict | None,
    fsc3d_volume: np.ndarray | None = None,
) -> dict[str, str]:
    """Central slices, FSC-to-truth curves and the directional-resolution histogram.

    Returns
    -------
    dict
        Figure name → path (``demo_slices.png``, ``demo_fsc.png``, ``demo_directional.png``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spIsoNet.fsc3d.plots import add_resolution_axis
    from spIsoNet.io import atomic_output

    output_dir = Path(output_dir)
    n = case.truth.shape[0]
    vs = case.voxel_size
    paths = {}

    # 1. central slices: rows truth / input / corrected; columns YX (view along the preferred
    #    axis z), ZX and ZY (the smeared direction z is vertical).
    rows = [("truth", case.truth), ("input (half-map average)", input_map)]
    if corrected_map is not None:
        rows.append(("corrected", corrected_map))
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for r, (name, vol) in enumerate(rows):
        v = vol * case.mask
        lo, hi = np.percentile(v, [1, 99.8])
        for c, (title, img) in enumerate(
            [("Y-X slice (z = n/2)", v[n // 2]), ("Z-X slice", v[:, n // 2]),
             ("Z-Y slice", v[:, :, n // 2])]
        ):  # fmt: skip
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=10)
            if c == 0:
                ax.set_ylabel(name, fontsize=10)
    fig.suptitle("Central slices (preferred view axis = z: smearing is vertical in Z-X, Z-Y)")
    fig.tight_layout()
    paths["slices"] = _save(fig, output_dir / "demo_slices.png", atomic_output, plt)

    # 2. FSC to truth: global and worst/best directions, before and after.
    shells = np.arange(len(before["global_fsc"]))
    freq = shells / (n * vs)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = [("input", before, "tab:red")]
    if after is not None:
        series.append(("corrected", after, "tab:blue"))
    for name, m, colour in series:
        ax.plot(freq, m["global_fsc"], color=colour, lw=2, label=f"{name}: global")
        worst = int(np.argmax(m["dir_res"]))
        best = int(np.argmin(m["dir_res"]))
        ax.plot(freq, m["curves"][worst], color=colour, ls="--", label=f"{name}: worst direction")
        ax.plot(freq, m["curves"][best], color=colour, ls=":", label=f"{name}: best direction")
    ax.axhline(TRUTH_THRESHOLD, color="gray", lw=0.8)
    ax.text(
        0.995 * freq[-1],
        TRUTH_THRESHOLD + 0.012,
        f"FSC = {TRUTH_THRESHOLD:g} (map vs truth)",
        ha="right",
        va="bottom",
        fontsize=7,
        color="dimgrey",
    )
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC to ground truth")
    ax.set_ylim(-0.1, 1.02)
    ax.set_xlim(0, freq[-1])
    add_resolution_axis(ax, float(freq[-1]))
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("FSC between map and ground truth (20° cones for directions)")
    fig.tight_layout()
    paths["fsc"] = _save(fig, output_dir / "demo_fsc.png", atomic_output, plt)

    # 3. histogram of directional resolutions (+ FSC3D central slice if given).
    ncols = 2 if fsc3d_volume is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 4), squeeze=False)
    ax = axes[0, 0]
    values = [before["dir_res"]] + ([after["dir_res"]] if after is not None else [])
    lo = min(float(v.min()) for v in values)
    hi = max(float(v.max()) for v in values)
    bins = np.linspace(lo * 0.95, hi * 1.05, 25)
    ax.hist(before["dir_res"], bins=bins, alpha=0.6, color="tab:red", label="input")
    if after is not None:
        ax.hist(after["dir_res"], bins=bins, alpha=0.6, color="tab:blue", label="corrected")
    ax.set_xlabel(f"directional resolution vs truth (Å, FSC={TRUTH_THRESHOLD})")
    ax.set_ylabel("directions")
    ax.legend()
    if fsc3d_volume is not None:
        ax = axes[0, 1]
        nyquist = 0.5 / vs
        image = ax.imshow(
            fsc3d_volume[:, :, n // 2],
            cmap="viridis",
            vmin=0,
            vmax=1,
            origin="lower",
            extent=(-nyquist, nyquist, -nyquist, nyquist),
        )
        ax.set_title("half-map FSC3D, kz-ky plane (kz vertical)", fontsize=10)
        ax.set_xlabel("ky (1/Å)")
        ax.set_ylabel("kz (1/Å)")
        fig.colorbar(image, ax=ax, label="FSC", shrink=0.85)
    fig.tight_layout()
    paths["directional"] = _save(fig, output_dir / "demo_directional.png", atomic_output, plt)
    return paths


def _save(fig, path: Path, atomic_output, plt) -> str:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return str(path)
