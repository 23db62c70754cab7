"""The three ways a half call is corrected once the start conditions hold.

* **joint** (:func:`correct_joint`, the *worker*): this process saw both plain half-maps; it
  corrects both together, writes its own result and delivers the partner's corrected map;
* **receive** (:func:`receive`, the *waiter*): the partner does the joint work; this process
  installs the corrected map it delivers;
* **solo** (:func:`correct_solo`): the partner is absent or sequential; this half is corrected
  alone, with the 3D FSC of the previous iteration's half-maps.

Each raises :class:`Fallback` (or any exception) when the plain map must stay; the program
(:mod:`.wrapper`) decides what that means for the exit status. Models: one checkpoint per
iteration and class/body (``<job>/spisonet/<o>_itNNN_classMMM[_halfH].pt``), all kept; with
``ISONET_WARM_START`` training continues from the previous iteration's model of the same
class/half when its architecture matches the settings.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from spIsoNet.io import read_map, read_mask
from spIsoNet.io.relion_arrays import check_result_file, write_result
from spIsoNet.io.star import write_fsc_feedback
from spIsoNet.log import get_logger
from spIsoNet.timing import stage_timer

from .call import CallName, ExternalStar
from .decision import Plan
from .metadata import IterationMetadata
from .settings import PluginSettings, engine_settings
from .sync import Rendezvous

__all__ = ["MODEL_FOLDER", "CorrectionJob", "Fallback", "correct_joint", "correct_solo", "receive"]

MODEL_FOLDER = "spisonet"

log = get_logger("relion")


class Fallback(Exception):
    """The correction does not run for this call; the plain map stays (message = reason)."""


def reason_of(exc: BaseException) -> str:
    """One line for an exception: its message (``Fallback``) or ``Type: message``."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, Fallback) else f"{type(exc).__name__}: {text}"


class CorrectionJob:
    """State of one half call's correction, shared by the three modes.

    Parameters
    ----------
    call, ext
        The call and its external STAR.
    settings
        Plugin settings.
    plan
        The decision (``plan.correct`` is True): metadata and resolution.
    plain
        This half's plain map ``[N, N, N]`` float32.
    timings
        Stage → seconds (filled in by the modes).
    """

    def __init__(
        self,
        call: CallName,
        ext: ExternalStar,
        settings: PluginSettings,
        plan: Plan,
        plain: np.ndarray,
        timings: dict[str, float],
    ) -> None:
        self.call = call
        self.ext = ext
        self.settings = settings
        self.plan = plan
        self.meta: IterationMetadata = plan.meta  # type: ignore[assignment]
        self.plain = plain
        self.timings = timings
        self.apix = float(self.meta.pixel_size)  # type: ignore[arg-type]
        self.n = ext.ori_size
        self.folder = call.job_dir if str(call.job_dir) else Path(".")
        self.engine = engine_settings(settings, self.n)

    def mask(self) -> np.ndarray | None:
        """RELION's solvent mask, else a soft sphere of the particle diameter, else None."""
        from .correction import soft_sphere

        if self.meta.solvent_mask:
            like = read_map(self.ext.result, voxel_size=self.apix, what="result map")
            log.info("mask: %s", self.meta.solvent_mask)
            return read_mask(self.meta.solvent_mask, like, what="solvent mask")
        diameter = self.ext.particle_diameter or self.meta.particle_diameter
        if diameter:
            radius = min(diameter / (2.0 * self.apix), self.n / 2.0 - 5.0)
            log.info("mask: soft sphere, particle diameter %.0f Å (no solvent mask)", diameter)
            return soft_sphere(self.n, radius)
        log.info("mask: none (no solvent mask, no particle diameter)")
        return None

    def initial_reference(self, half: int) -> np.ndarray | None:
        """Return the initial reference for keep-lowres (None: not requested or not available)."""
        if not (self.settings.keep_lowres or self.meta.keep_lowres):
            return None
        path = self.meta.initial_references.get(half) or self.meta.initial_references.get(0)
        if path is None or self.meta.ini_high is None:
            log.warning("keep-lowres requested but no initial reference/--ini_high: not applied")
            return None
        ref = read_map(path, voxel_size=self.apix, what="initial reference").data
        if ref.shape != self.plain.shape:
            log.warning("initial reference %s has shape %s: not used", path, ref.shape)
            return None
        return ref

    def model_location(self, suffix: str = "") -> tuple[Path, str, str | None]:
        """Model folder, this iteration's model name and the warm-start checkpoint (or None)."""
        folder = self.folder / MODEL_FOLDER
        key = Path(self.call.with_half(None).root).name + suffix
        if not self.warm_start_wanted() or not self.call.iteration:
            return folder, key, None
        prev_key = Path(self.call.iteration_root(self.call.iteration - 1)).name
        tag = f"{self.call.kind}{self.call.index:0{self.call.index_digits}d}"
        previous = folder / f"{prev_key}_{tag}{suffix}.pt"
        if not previous.is_file():
            log.info("warm start: no model of the previous iteration (%s): from scratch", previous)
            return folder, key, None
        problem = self._architecture_problem(previous)
        if problem:
            log.info("warm start: %s: %s; training from scratch", previous, problem)
            return folder, key, None
        return folder, key, str(previous)

    def warm_start_wanted(self) -> bool:
        """``ISONET_WARM_START``, unless ``ISONET_RETRAIN_EACH_ITER`` is set to true."""
        retrain = "ISONET_RETRAIN_EACH_ITER" in self.settings.given and (
            self.settings.retrain_each_iter
        )
        return self.settings.warm_start and not retrain

    def _architecture_problem(self, checkpoint: Path) -> str | None:
        from spIsoNet.engine.checkpoint import load_checkpoint
        from spIsoNet.errors import InputError

        try:
            config = load_checkpoint(checkpoint).get("config", {})
        except InputError as exc:
            return str(exc)
        wanted = {"width": self.engine.net_width, "depth": self.engine.net_depth}
        found = {k: config.get(k) for k in wanted}
        if found != wanted:
            return f"architecture {found} differs from the settings' {wanted}"
        return None

    def log_plan(self, n_maps: int, pretrained: str | None) -> None:
        """Log the training plan of this call (one line)."""
        e = self.engine
        batch = e.batch_size or 4
        steps = max(1, e.n_subvolume // batch) * e.epochs
        limit = f"{e.time_limit:g} s" if e.time_limit else "none"
        warm = f"from {Path(pretrained).name}" if pretrained else "off (from scratch)"
        summary_line = (
            f"plan: {n_maps} map(s), {e.epochs} epoch(s) x {e.n_subvolume} cubes of {e.cube_size}³"
            f" = ~{steps} steps (batch {batch}), time limit {limit}, warm start {warm}, "
            f"net width {e.net_width} depth {e.net_depth}, lr {e.learning_rate:g}, "
            f"device {e.device}, {e.ncpus} CPU thread(s), limit {self.plan.limit_res:.2f} Å"
        )
        log.info(summary_line, extra={"summary": True})

    def run_correction(self, maps, fsc_pair=None, suffix=""):
        """Correct ``maps`` (2 = joint, 1 = this half alone); returns (outcome, mask)."""
        from .correction import correct_halves

        folder, key, pretrained = self.model_location(suffix)
        self.log_plan(len(maps), pretrained)
        mask = self.mask()
        halves = [1, 2] if len(maps) == 2 else [self.call.half]
        outcome = correct_halves(
            maps,
            self.apix,
            limit_res=self.plan.limit_res,
            settings=self.settings,
            engine_settings=self.engine,
            output_dir=folder,
            model_name=key,
            mask=mask,
            keep_lowres=self.settings.keep_lowres or self.meta.keep_lowres,
            ini_high=self.meta.ini_high,
            initial_references=[self.initial_reference(h) for h in halves],
            fsc_pair=fsc_pair,
            pretrained_model=pretrained,
        )
        if outcome.model_path:
            log.info("model: %s", outcome.model_path)
        return outcome, mask


def _log_metrics(job: CorrectionJob, before: list, after: list, mask) -> None:
    """Before/after anisotropy metrics within the band the maps carry (the current size)."""
    from spIsoNet.fsc3d import anisotropy_summary, format_metrics

    from .correction import band_limited

    band = job.plan.resolution.nyquist_current if job.plan.resolution else 2.0 * job.apix
    (b1, b2), apix = band_limited(before, job.apix, band)
    (a1, a2), _ = band_limited(after, job.apix, band)
    small_mask = None
    if mask is not None:
        (small_mask,), _ = band_limited([mask], job.apix, band)
        small_mask = np.clip(small_mask, 0.0, 1.0)
    metrics_before = anisotropy_summary(b1, b2, apix, mask=small_mask)
    metrics_after = anisotropy_summary(a1, a2, apix, mask=small_mask)
    log.info(
        "metrics up to the current size's Nyquist %.2f Å; before: input halves; after (halves "
        "trained together, FSC optimistic)",
        band,
    )
    for line in format_metrics({"before": metrics_before, "after": metrics_after}):
        log.info("%s", line)
    for title, metrics in (("before", metrics_before), ("after", metrics_after)):
        if not metrics.global_crossed_0143 or metrics.dir_not_crossed:
            log.info(
                "%s: %s%d of %d directions stay above 0.143 up to %.2f Å: their values are the "
                "band edge, not measured resolutions (at least that fine)",
                title,
                "the global FSC and " if not metrics.global_crossed_0143 else "",
                metrics.dir_not_crossed,
                metrics.n_directions,
                band,
            )


def correct_joint(job: CorrectionJob, rdv: Rendezvous) -> str:
    """Worker: correct both halves, write own result and deliver the partner's."""
    partner = job.call.partner
    partner_result = f"{partner.root}_external_reconstruct.mrc"
    try:
        with stage_timer(job.timings, "read partner map"):
            other = read_map(partner_result, voxel_size=job.apix, what="partner's plain map").data
            if other.shape != job.plain.shape:
                raise Fallback(f"partner's plain map {partner_result} has shape {other.shape}")
            maps = [job.plain, other] if job.call.half == 1 else [other, job.plain]
        outcome, mask = job.run_correction(maps)
        job.timings.update(outcome.timings)
        with stage_timer(job.timings, "metrics"):
            _log_metrics(job, maps, outcome.corrected, mask)
        fsc_after = None
        if job.settings.fsc_feedback:
            from spIsoNet import fourier

            fsc_after = fourier.fsc_curve(outcome.corrected[0], outcome.corrected[1], mask)
        own = outcome.corrected[job.call.half - 1]
        theirs = outcome.corrected[partner.half - 1]
        if rdv.partner_abandoned():
            log.warning("half%d gave up waiting: its corrected map is not delivered", partner.half)
        else:
            write_result(rdv.partner_map_path(), theirs, job.apix)
            rdv.publish_for_partner(
                "corrected",
                f"jointly by half{job.call.half} on {outcome.device}",
                str(rdv.partner_map_path()),
                fsc=None if fsc_after is None else [float(v) for v in fsc_after],
            )
        write_result(job.ext.result, own, job.apix)
        if fsc_after is not None and job.ext.result_star:
            write_fsc_feedback(job.ext.result_star, fsc_after)
            log.info("FSC feedback written to %s", job.ext.result_star)
        return f"corrected (joint, both halves, {outcome.device})"
    except BaseException as exc:
        if not rdv.partner_abandoned():
            with contextlib.suppress(Exception):
                rdv.publish_for_partner("failed", f"worker half{job.call.half}: {reason_of(exc)}")
        raise


def correct_solo(job: CorrectionJob) -> str:
    """Correct this half on its own (partner absent/sequential), 3D FSC of the previous maps."""
    paths = [job.meta.previous_halfmaps.get(h) for h in (1, 2)]
    if not all(p and Path(p).is_file() for p in paths):
        raise Fallback(f"correcting a half alone needs the previous half-maps {paths}")
    pair = tuple(read_map(p, voxel_size=job.apix, what="previous half-map").data for p in paths)
    if pair[0].shape != job.plain.shape or pair[1].shape != job.plain.shape:
        raise Fallback("previous half-maps do not match the box of this iteration")
    log.info("3D FSC from the previous iteration's half-maps %s, %s", *paths)
    outcome, _ = job.run_correction([job.plain], fsc_pair=pair, suffix=f"_half{job.call.half}")
    job.timings.update(outcome.timings)
    write_result(job.ext.result, outcome.corrected[0], job.apix)
    return f"corrected (this half alone, {outcome.device})"


def receive(job: CorrectionJob, rdv: Rendezvous) -> str:
    """Waiter: install the corrected map the worker made for this half."""
    with stage_timer(job.timings, "waiting for the partner"):
        outcome = rdv.wait_for_worker()
    if outcome.status != "corrected" or not outcome.map_path:
        raise Fallback(f"partner: {outcome.status}: {outcome.reason}")
    check_result_file(outcome.map_path, job.n)
    os.replace(outcome.map_path, job.ext.result)
    if outcome.fsc is not None and job.settings.fsc_feedback and job.ext.result_star:
        write_fsc_feedback(job.ext.result_star, np.asarray(outcome.fsc))
    return f"corrected ({outcome.reason})"
