"""Figures written during a run (matplotlib, non-interactive backend)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from spIsoNet.io import atomic_output


def plot_losses(path: str | os.PathLike, histories: dict[str, list[float]]) -> Path:
    """Write the per-epoch mean training loss of each model to a PNG (atomic).

    Parameters
    ----------
    path
        Output PNG.
    histories
        Model name → mean loss per epoch (the loss is a per-sample mean, independent of the batch
        size and of gradient accumulation).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, values in histories.items():
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean per sample)")
    ax.grid(alpha=0.3)
    if len(histories) > 1:
        ax.legend()
    fig.tight_layout()
    final = Path(path)
    with atomic_output(final) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return final


@dataclass(frozen=True)
class LossPlot:
    """Loss-figure callback for :func:`spIsoNet.engine.correct_maps` (picklable)."""

    path: Path

    def __call__(self, histories: dict[str, list[float]]) -> Path:
        """Draw the figure (called after every epoch)."""
        return plot_losses(self.path, histories)
