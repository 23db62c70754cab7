"""Whether a half call is corrected: the start conditions, checked before any heavy work.

The outcome is explicit (:class:`Outcome`): ``CORRECT``, ``SKIP`` (a start condition does not hold
yet: the plain map is RELION's, nothing is wrong) or ``FALLBACK`` (the correction was wanted or
possible but cannot run: logged as an error, exit 1 with ``ISONET_STRICT``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from spIsoNet.errors import InputError

from .call import CallName, ExternalStar
from .metadata import IterationMetadata, read_iteration_metadata
from .resolution import ResolutionPlan, plan_resolution
from .settings import PluginSettings

__all__ = ["Outcome", "Plan", "plan_correction"]


class Outcome(enum.Enum):
    """What a call does after the plain map is written."""

    CORRECT = "correct"
    SKIP = "skip"
    FALLBACK = "fallback"


@dataclass
class Plan:
    """Outcome of the checks before the reconstruction, and why.

    Attributes
    ----------
    outcome
        :class:`Outcome`.
    reason
        Why (one line, without a prefix).
    meta
        The previous iteration's metadata (None when it could not be read).
    resolution
        The resolutions of the call and the one used (None before they are known).
    solo
        ``--sequential_halves_recons`` is on the command line: each half is corrected alone.
    """

    outcome: Outcome
    reason: str
    meta: IterationMetadata | None = None
    resolution: ResolutionPlan | None = None
    solo: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        """The correction runs."""
        return self.outcome is Outcome.CORRECT

    @property
    def limit_res(self) -> float:
        """Resolution (Å) of the training limit and the final low-pass (only when correcting)."""
        assert self.resolution is not None and self.resolution.use is not None
        return float(self.resolution.use)


def plan_correction(
    call: CallName, ext: ExternalStar, settings: PluginSettings, settings_error: str | None
) -> Plan:
    """Read the metadata and check the start conditions of a half call (no heavy work).

    Start conditions: healpix order of the previous iteration ≥ ``ISONET_START_HEALPIX`` and the
    resolution (:func:`.resolution.plan_resolution`: RELION's own current resolution) finer
    than ``ISONET_START_RESOLUTION``.
    """
    if settings_error is not None:
        return Plan(Outcome.FALLBACK, settings_error)
    try:
        meta = read_iteration_metadata(call, ext.pixel_size)
    except InputError as exc:
        return Plan(Outcome.FALLBACK, f"metadata: {exc}")
    if meta.pixel_size is None:
        return Plan(Outcome.FALLBACK, "pixel size unknown", meta=meta)
    resolution = plan_resolution(
        meta.current_resolution,
        ext.fsc,
        ext.ori_size,
        meta.pixel_size,
        ext.current_size,
        0.5 if settings.fsc_05 else 0.143,
    )
    plan = Plan(Outcome.SKIP, "", meta=meta, resolution=resolution, solo=meta.sequential_halves)
    start = settings.start_resolution
    if meta.healpix_order is None:
        plan.reason = "healpix order unknown"
    elif meta.healpix_order < settings.start_healpix:
        plan.reason = f"healpix {meta.healpix_order} < {settings.start_healpix}"
    elif resolution.use is None:
        plan.reason = f"no trustworthy resolution yet ({resolution.source})"
    elif not resolution.use < start:
        plan.reason = f"resolution {resolution.use:.2f} Å >= {start:g} Å ({resolution.source})"
    else:
        plan.outcome = Outcome.CORRECT
        plan.reason = (
            f"healpix {meta.healpix_order} >= {settings.start_healpix} and resolution "
            f"{resolution.use:.2f} Å < {start:g} Å ({resolution.source})"
        )
    return plan
