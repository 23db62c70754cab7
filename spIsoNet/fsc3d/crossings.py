"""Where FSC curves first fall below a threshold: the one crossing finder of the package.

Used for the directional resolutions of :mod:`spIsoNet.fsc3d.report` (half-map vs half-map at
0.143) and of the demo's comparison with the ground truth (map vs truth at 0.5). For one curve
and ``min_shell = 1`` it agrees with :func:`spIsoNet.fourier.resolution_at`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spIsoNet.fourier import shell_to_resolution

__all__ = ["Crossings", "first_crossings"]


@dataclass(frozen=True)
class Crossings:
    """First crossings of a set of curves.

    Attributes
    ----------
    shell : numpy.ndarray
        float64 ``[d]``, fractional shell of the crossing (linear interpolation between the last
        shell above and the first shell below the threshold); the last shell when never crossed.
    crossed : numpy.ndarray
        bool ``[d]``, False where the curve stays at or above the threshold up to the last shell.
    """

    shell: np.ndarray
    crossed: np.ndarray

    def resolution(self, box: int, voxel_size: float) -> np.ndarray:
        """Resolution of every crossing, Å, float64 ``[d]`` (``box · voxel_size / shell``)."""
        return np.asarray(shell_to_resolution(self.shell, box, voxel_size), dtype=np.float64)


def first_crossings(
    curves: np.ndarray,
    threshold: float = 0.143,
    *,
    min_shell: int = 1,
    clip_to_min_shell: bool = False,
) -> Crossings:
    """First crossing below ``threshold`` of every row of ``curves``, vectorised.

    Parameters
    ----------
    curves : numpy.ndarray
        ``[d, n_shells]`` (or ``[n_shells]``) values per integer shell, shell 0 = DC (ignored).
    threshold : float
        e.g. 0.143 (half-map gold standard) or 0.5 (map against the truth).
    min_shell : int
        First shell searched for a crossing. Shells below it are ignored: a cone there holds only
        a few voxels, so one unlucky coefficient would set the resolution of that direction (as
        SIMPLE skips sparse bins).
    clip_to_min_shell : bool
        Report a crossing found at ``min_shell`` at ``min_shell`` itself instead of interpolating
        towards the (ignored) shell below it.

    Returns
    -------
    Crossings
        ``shell`` and ``crossed``, one entry per curve.
    """
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    below = curves[:, 1:] < threshold
    below[:, : max(0, min_shell - 1)] = False
    crossed = below.any(axis=1)
    index = np.argmax(below, axis=1) + 1  # first searched shell below the threshold
    rows = np.arange(len(curves))
    upper = curves[rows, index - 1]
    lower = curves[rows, index]
    with np.errstate(divide="ignore", invalid="ignore"):
        shell = (index - 1) + (upper - threshold) / (upper - lower)
    # below already at shell 1, or the shell before the first searched one is below too:
    # no interpolation
    shell = np.where(index == 1, 1.0, shell)
    shell = np.where(upper < threshold, np.maximum(index - 1, 1).astype(np.float64), shell)
    shell = np.where(crossed, shell, float(curves.shape[1] - 1))
    if clip_to_min_shell:
        shell = np.maximum(shell, float(min_shell))
    return Crossings(shell=shell, crossed=crossed)
