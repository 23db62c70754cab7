"""The resolutions a call knows, and which one each decision uses (one home for that policy).

Two numbers are available when RELION calls the plugin for iteration N:

* **RELION's own** ``rlnCurrentResolution`` (Å) of iteration N−1's model STAR: the resolution
  RELION itself considers resolved, from which it chose this iteration's current image size;
* **the current FSC**: ``rlnGoldStandardFsc`` of the external STAR, computed by RELION in this
  iteration from the two half-sets, unmasked, and *truncated at the current size*: shells beyond
  ``current_size // 2`` are written as 0. When the FSC is still above the threshold at the last
  shell it carries, the "crossing" an FSC search finds is the truncation edge, not a measurement;
  it is then reported as "at least as fine as X Å (FSC truncated at the current size)".

Policy (the README's RELION section documents it):

* start condition (``ISONET_START_RESOLUTION``): RELION's resolution; when it is not known (no
  model STAR, or ``inf`` at iteration 0) the FSC's crossing if it was measured, else (FSC truncated)
  the current size's Nyquist, which the resolution is at least as fine as; without either the
  correction does not start;
* training limit (whitening, 3D FSC, training) and the final low-pass: the same resolution, and
  never finer than the current size's Nyquist ``N · apix / (current_size // 2)``, so that what
  the plugin adds stays within what RELION considers resolved.

Pure functions (numpy only); nothing here reads files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FscCrossing", "ResolutionPlan", "fsc_crossing", "plan_resolution"]


@dataclass(frozen=True)
class FscCrossing:
    """Where the external STAR's FSC first falls below a threshold.

    Attributes
    ----------
    angstrom
        Resolution of the crossing (Å); with ``truncated`` the truncation edge's resolution.
    shell
        Fractional shell of the crossing (linear interpolation), or the last carried shell.
    truncated
        True when the FSC stays at or above the threshold up to the last shell it carries
        (``current_size // 2``): the crossing is not measured.
    threshold
        The threshold (0.143 or 0.5).
    """

    angstrom: float
    shell: float
    truncated: bool
    threshold: float

    def describe(self) -> str:
        """``"FSC 0.143 = 14.71 Å"`` or ``"FSC 0.143: at least as fine as 7.53 Å (FSC ...)"``."""
        if self.truncated:
            return (
                f"FSC {self.threshold:g}: at least as fine as {self.angstrom:.2f} Å "
                "(FSC truncated at the current size; no crossing measured)"
            )
        return f"FSC {self.threshold:g} = {self.angstrom:.2f} Å"


def fsc_crossing(
    fsc: np.ndarray, box: int, voxel_size: float, current_size: int, threshold: float = 0.143
) -> FscCrossing:
    """First crossing of ``threshold`` by a truncated FSC, shell 0 ignored.

    Parameters
    ----------
    fsc
        Per-shell FSC ``[box//2 + 1]`` (shell 0 = DC), as in the external STAR.
    box, voxel_size
        ``N`` (voxels) and Å per voxel.
    current_size
        ``rlnCurrentImageSize``: shells above ``current_size // 2`` carry nothing.
    threshold
        0.143 (gold standard) or 0.5.
    """
    from spIsoNet.fourier import resolution_at

    values = np.asarray(fsc, dtype=np.float64)
    last = min(len(values) - 1, max(1, min(int(current_size), box) // 2))
    # the package's crossing finder on the shells the maps carry: "never crossed" there means
    # truncated at the current size, not a measured resolution
    found = resolution_at(values[: last + 1], box, voxel_size, threshold)
    return FscCrossing(found.angstrom, found.shell, not found.crossed, threshold)


@dataclass(frozen=True)
class ResolutionPlan:
    """The resolutions of one call and the one the correction uses.

    Attributes
    ----------
    relion
        RELION's ``rlnCurrentResolution`` (Å) of the previous iteration, or None.
    fsc
        The current FSC's crossing, or None without an FSC.
    nyquist_current
        Finest resolution the current size carries (Å).
    use
        Resolution (Å) of the start condition, the training limit and the final low-pass;
        None when nothing trustworthy is known.
    source
        Where ``use`` comes from (for the log).
    """

    relion: float | None
    fsc: FscCrossing | None
    nyquist_current: float
    use: float | None
    source: str

    def describe(self) -> str:
        """One log line with both resolutions and the choice."""
        relion = f"{self.relion:.2f} Å" if self.relion else "unknown"
        fsc = self.fsc.describe() if self.fsc else "no FSC in the STAR file"
        used = f"{self.use:.2f} Å ({self.source})" if self.use else f"none ({self.source})"
        return f"resolution: RELION's current {relion}; this iteration's {fsc}; used: {used}"


def plan_resolution(
    relion_resolution: float | None,
    fsc: np.ndarray | None,
    box: int,
    voxel_size: float,
    current_size: int,
    threshold: float = 0.143,
) -> ResolutionPlan:
    """Choose the resolution of a call (see the module docstring for the policy).

    Parameters
    ----------
    relion_resolution
        ``rlnCurrentResolution`` (Å) of the previous model STAR, None if unknown.
    fsc
        The external STAR's FSC ``[box//2 + 1]`` or None (absent or all zero).
    box, voxel_size, current_size
        ``N``, Å per voxel, ``rlnCurrentImageSize``.
    threshold
        FSC threshold (``ISONET_FSC_05``: 0.5).
    """
    last = max(1, min(int(current_size), box) // 2)
    nyquist_current = box * voxel_size / last
    crossing = None
    if fsc is not None and np.any(np.asarray(fsc)[1:] != 0):
        crossing = fsc_crossing(fsc, box, voxel_size, current_size, threshold)
    if relion_resolution is not None and np.isfinite(relion_resolution):
        use, source = relion_resolution, "RELION's current resolution"
    elif crossing is not None and not crossing.truncated:
        use, source = crossing.angstrom, f"this iteration's FSC {threshold:g} crossing"
    elif crossing is not None:  # FSC above the threshold up to the edge: at least this fine
        use = nyquist_current
        source = "RELION's resolution unknown, FSC truncated: the current size's Nyquist"
    else:
        reason = "RELION's resolution unknown and no FSC"
        return ResolutionPlan(relion_resolution, crossing, nyquist_current, None, reason)
    if use < nyquist_current:
        use, source = nyquist_current, f"{source}, limited to the current size"
    return ResolutionPlan(relion_resolution, crossing, nyquist_current, float(use), source)
