"""The RELION plugin program: ``spisonet-relion <root>_external_reconstruct.star``.

Set ``RELION_EXTERNAL_RECONSTRUCT_EXECUTABLE=spisonet-relion`` and run relion_refine with
``--external_reconstruct``. Each call:

1. reads the STAR file and the three arrays, reconstructs the map exactly as RELION's
   ``relion_external_reconstruct`` and writes it to the result path (temporary name + rename):
   the *plain* result, always in place before anything else is tried;
2. for the half calls of a gold-standard refinement whose start conditions hold (healpix order,
   resolution), pairs up with the other half (:mod:`.sync`), corrects the half-maps
   (:mod:`.correction`) and replaces the result by the corrected map.

Never kills a refinement: any problem after step 1 leaves the plain map, is logged loudly and
the exit status is 0 (``ISONET_STRICT=True`` turns that into exit 1). Exit 2 only when the plain
map cannot be made (unreadable STAR/arrays, wrong sizes), with one line naming the file.
Invalid ``ISONET_*`` values stop the job at its first iteration (exit 2, nothing lost yet); at
later iterations (a continued run) they are logged as an error and the plain map is used.

One log per job folder, ``spisonet_relion.log`` (both halves, timestamps, decision and reason,
stage timings, before/after metrics); short summary lines on stdout (RELION's run.out).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import mrcfile
import numpy as np

from spIsoNet import fourier
from spIsoNet.errors import InputError
from spIsoNet.io import read_map, read_mask, write_map, write_text_atomic
from spIsoNet.log import LOGGER_NAME

from .call import ROLE_HALF, ROLE_OTHER, CallName, ExternalStar, parse_root, read_external_star
from .correction import soft_sphere
from .metadata import IterationMetadata, read_iteration_metadata
from .reconstruction import reconstruct
from .settings import PluginSettings, SettingsError, read_settings
from .sync import MODE_SOLO, MODE_WAITER, MODE_WORKER, Rendezvous

LOG_NAME = "spisonet_relion.log"
USAGE = "usage: spisonet-relion <root>_external_reconstruct.star   (called by relion_refine)"
MODEL_FOLDER = "spisonet"

log = logging.getLogger(f"{LOGGER_NAME}.relion")


class Fallback(Exception):
    """The correction does not run for this call; the plain map stays (message = reason)."""


@dataclass
class Plan:
    """Outcome of the checks before the reconstruction: correct or not, and why."""

    correct: bool
    reason: str
    meta: IterationMetadata | None = None
    resolution: float | None = None
    mode_hint: str | None = None  # MODE_SOLO when --sequential_halves_recons is known
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# logging
class _TagFilter(logging.Filter):
    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag

    def filter(self, record: logging.LogRecord) -> bool:
        record.tag = self.tag
        return True


class _SummaryFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or getattr(record, "summary", False)


def _setup_logging(log_file: Path | None, tag: str) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    tag_filter = _TagFilter(f"{tag} pid {os.getpid()}")
    file_handler = None
    if log_file is not None:
        try:
            file_handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        except OSError as exc:  # e.g. a read-only job folder: the write of the map will say so
            print(f"spisonet-relion: cannot open {log_file}: {exc.strerror}", file=sys.stderr)
    if file_handler is not None:
        file_handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-7s [%(tag)s] %(message)s", "%Y-%m-%d %H:%M:%S"
            )
        )
        file_handler.addFilter(tag_filter)
        logger.addHandler(file_handler)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("spIsoNet [%(tag)s] %(message)s"))
    console.addFilter(tag_filter)
    console.addFilter(_SummaryFilter())
    logger.addHandler(console)
    logger.propagate = False
    return logger


def _summary(message: str, *args) -> None:
    log.info(message, *args, extra={"summary": True})


# --------------------------------------------------------------------------------------------
# plain reconstruction
def read_array(path: str, shape: tuple[int, int, int], what: str) -> np.ndarray:
    """Read one of RELION's Fourier arrays, checking existence, format, shape and values."""
    if not Path(path).is_file():
        raise InputError(f"{path}: {what} array not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, mode="r", permissive=False) as mrc:
                data = np.array(mrc.data, dtype=np.float32)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{path}: not a readable MRC {what} array (truncated?): {reason}"
        ) from None
    if tuple(data.shape) != tuple(shape):
        raise InputError(f"{path}: {what} array has shape {tuple(data.shape)}, expected {shape}")
    if not np.isfinite(data).all():
        raise InputError(f"{path}: {what} array contains NaN/Inf values")
    return data


def plain_reconstruction(ext: ExternalStar, fast: bool = False) -> np.ndarray:
    """RELION's reconstruction of this call (float32 ``N³``).

    ``fast``: only the first 2 of the 10 gridding iterations in float64
    (``ISONET_FAST_RECONSTRUCTION``).
    """
    from .reconstruction import GridGeometry

    geom = GridGeometry.from_call(ext.ori_size, ext.current_size, ext.padding)
    arrays = [
        read_array(ext.data_real, geom.file_shape, "data_real"),
        read_array(ext.data_imag, geom.file_shape, "data_imag"),
        read_array(ext.weight, geom.file_shape, "weight"),
    ]
    try:
        return reconstruct(
            *arrays,
            ori_size=ext.ori_size,
            current_size=ext.current_size,
            padding_factor=ext.padding,
            tau2=ext.tau2,
            tau2_fudge=ext.tau2_fudge,
            double_iterations=2 if fast else None,
        )
    except ValueError as exc:
        raise InputError(f"{ext.path}: {exc}") from None


def write_result(path: str, volume: np.ndarray, voxel_size: float | None) -> None:
    """Write a result map (exactly ``N³`` float32) under a temporary name, then rename."""
    n = volume.shape[0]
    if volume.shape != (n, n, n) or not np.isfinite(volume).all():
        raise ValueError(f"refusing to write {path}: map is not a finite {n}³ volume")
    write_map(path, volume.astype(np.float32, copy=False), voxel_size or 1.0)


def check_result_file(path: str, n: int) -> None:
    """Raise ValueError unless ``path`` is a complete float32 ``n³`` MRC map with finite values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mrcfile.open(path, mode="r", permissive=False) as mrc:
            if mrc.data.shape != (n, n, n) or mrc.data.dtype != np.float32:
                raise ValueError(f"{path}: shape {mrc.data.shape} {mrc.data.dtype}, expected {n}³")
            if not np.isfinite(mrc.data).all():
                raise ValueError(f"{path}: contains NaN/Inf")


def write_fsc_feedback(path: str, fsc: np.ndarray) -> None:
    """``<root>_external_reconstruct_out.star``: per-shell FSC for RELION (``# version 30001``)."""
    lines = [
        "",
        "# version 30001",
        "",
        "data_external_reconstruct_out",
        "",
        "loop_ ",
        "_rlnSpectralIndex #1 ",
        "_rlnFourierShellCorrelation #2 ",
    ]
    lines += [f"{i:12d} {float(v):12.6f} " for i, v in enumerate(fsc)]
    write_text_atomic(path, "\n".join(lines) + "\n \n")


# --------------------------------------------------------------------------------------------
# decisions
def plan_correction(
    call: CallName, ext: ExternalStar, settings: PluginSettings, settings_error: str | None
) -> Plan:
    """Read the metadata and check the start conditions of a half call (no heavy work)."""
    if settings_error is not None:
        return Plan(False, f"fallback: {settings_error}")
    try:
        meta = read_iteration_metadata(call, ext.pixel_size)
    except InputError as exc:
        return Plan(False, f"fallback: metadata: {exc}")
    plan = Plan(False, "", meta=meta)
    if meta.pixel_size is None:
        plan.reason = "fallback: pixel size unknown"
        return plan
    if ext.fsc is None or not np.any(ext.fsc[1:] != 0):
        plan.reason = "skipped: no FSC in the STAR file"
        return plan
    threshold = 0.5 if settings.fsc_05 else 0.143
    res = fourier.resolution_at(ext.fsc, ext.ori_size, meta.pixel_size, threshold)
    plan.resolution = max(float(res.angstrom), 2.0 * meta.pixel_size)
    if meta.healpix_order is None:
        plan.reason = "skipped: healpix order unknown"
    elif meta.healpix_order < settings.start_healpix:
        plan.reason = f"skipped: healpix {meta.healpix_order} < {settings.start_healpix}"
    elif not plan.resolution < settings.start_resolution:
        plan.reason = (
            f"skipped: resolution {plan.resolution:.2f} Å >= {settings.start_resolution:g} Å"
        )
    else:
        plan.correct = True
        plan.reason = (
            f"healpix {meta.healpix_order} >= {settings.start_healpix} and resolution "
            f"{plan.resolution:.2f} Å < {settings.start_resolution:g} Å"
        )
        if meta.sequential_halves:
            plan.mode_hint = MODE_SOLO
    return plan


def engine_settings(settings: PluginSettings, box: int):
    """:class:`EngineSettings` from the plugin settings (device: ISONET_DEVICE / ISONET_GPUS)."""
    from spIsoNet.engine.pipeline import EngineSettings

    device = settings.device
    if settings.gpus is not None and device == "auto":
        device = "cuda"
    return EngineSettings(
        epochs=settings.epochs,
        alpha=settings.alpha,
        beta=settings.beta,
        n_subvolume=settings.n_subvolume,
        cube_size=min(settings.cube_size, box // 8 * 8),
        predict_crop_size=min(80, box),
        batch_size=settings.batch_size,
        acc_batches=settings.acc_batches,
        net_width=settings.net_width,
        seed=settings.seed,
        device=device,
        gpu_ids=list(settings.gpus) if settings.gpus is not None else None,
        show_progress=False,
    )


# --------------------------------------------------------------------------------------------
# correction
class _Job:
    """State of one half call's correction (holds everything the stages share)."""

    def __init__(self, call, ext, settings, plan, plain, timings):
        self.call: CallName = call
        self.ext: ExternalStar = ext
        self.settings: PluginSettings = settings
        self.plan: Plan = plan
        self.meta: IterationMetadata = plan.meta
        self.plain: np.ndarray = plain
        self.timings: dict[str, float] = timings
        self.apix: float = float(plan.meta.pixel_size)
        self.n = ext.ori_size
        self.folder = call.job_dir if str(call.job_dir) else Path(".")

    def mask(self) -> np.ndarray | None:
        like_path = self.ext.result
        if self.meta.solvent_mask:
            like = read_map(like_path, voxel_size=self.apix, what="result map")
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
        folder = self.folder / MODEL_FOLDER
        key = Path(self.call.with_half(None).root).name + suffix
        pretrained = None
        if not self.settings.retrain_each_iter and self.call.iteration:
            prev_key = Path(self.call.iteration_root(self.call.iteration - 1)).name
            prev = folder / f"{prev_key}_{self.call.kind}{self.call.index:03d}{suffix}.pt"
            pretrained = str(prev) if prev.is_file() else None
        return folder, key, pretrained

    def run_correction(self, maps, fsc_pair=None, suffix=""):
        """Correct ``maps`` (2 = joint, 1 = this half alone); returns (outcome, mask)."""
        from .correction import correct_halves

        folder, key, pretrained = self.model_location(suffix)
        mask = self.mask()
        halves = [1, 2] if len(maps) == 2 else [self.call.half]
        outcome = correct_halves(
            maps,
            self.apix,
            limit_res=self.plan.resolution,
            settings=self.settings,
            engine_settings=engine_settings(self.settings, self.n),
            output_dir=folder,
            model_name=key,
            mask=mask,
            keep_lowres=self.settings.keep_lowres or self.meta.keep_lowres,
            ini_high=self.meta.ini_high,
            initial_references=[self.initial_reference(h) for h in halves],
            fsc_pair=fsc_pair,
            pretrained_model=pretrained,
        )
        if self.settings.retrain_each_iter and self.call.iteration:
            # models are not reused: keep only the newest one per class/body
            prev_key = Path(self.call.iteration_root(self.call.iteration - 1)).name
            tag = f"{self.call.kind}{self.call.index:03d}"
            for old in folder.glob(f"{prev_key}_{tag}*.pt"):
                with contextlib.suppress(OSError):
                    old.unlink()
        return outcome, mask


def _log_timings(timings: dict[str, float]) -> None:
    text = ", ".join(f"{k.strip()} {v:.1f} s" for k, v in timings.items())
    log.info("timings: %s", text)


def correct_joint(job: _Job, rdv: Rendezvous) -> str:
    """Worker: correct both halves, write own result and deliver the partner's."""
    partner = job.call.partner
    partner_result = f"{partner.root}_external_reconstruct.mrc"
    try:
        t = time.perf_counter()
        other = read_map(partner_result, voxel_size=job.apix, what="partner's plain map").data
        if other.shape != job.plain.shape:
            raise Fallback(f"partner's plain map {partner_result} has shape {other.shape}")
        maps = [job.plain, other] if job.call.half == 1 else [other, job.plain]
        job.timings["read partner map"] = time.perf_counter() - t
        outcome, mask = job.run_correction(maps)
        job.timings.update(outcome.timings)
        t = time.perf_counter()
        from spIsoNet.fsc3d import anisotropy_summary, format_metrics

        before = anisotropy_summary(maps[0], maps[1], job.apix, mask=mask)
        after = anisotropy_summary(*outcome.corrected, job.apix, mask=mask)
        log.info("metrics before: input halves; after (halves trained together, FSC optimistic)")
        for line in format_metrics({"before": before, "after": after}):
            log.info("%s", line)
        job.timings["metrics"] = time.perf_counter() - t
        fsc_after = None
        if job.settings.fsc_feedback:
            fsc_after = fourier.fsc_curve(outcome.corrected[0], outcome.corrected[1], mask)
        own = outcome.corrected[job.call.half - 1]
        theirs = outcome.corrected[partner.half - 1]
        if rdv.partner_abandoned():
            log.warning("half%d gave up waiting: its corrected map is not delivered", partner.half)
        else:
            write_result(str(rdv.partner_map_path()), theirs, job.apix)
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
                rdv.publish_for_partner("failed", f"worker half{job.call.half}: {_reason(exc)}")
        raise


def correct_solo(job: _Job) -> str:
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


def receive(job: _Job, rdv: Rendezvous) -> str:
    """Waiter: install the corrected map the worker made for this half."""
    t = time.perf_counter()
    outcome = rdv.wait_for_worker()
    job.timings["waiting for the partner"] = time.perf_counter() - t
    if outcome.status != "corrected" or not outcome.map_path:
        raise Fallback(f"partner: {outcome.status}: {outcome.reason}")
    check_result_file(outcome.map_path, job.n)
    os.replace(outcome.map_path, job.ext.result)
    if outcome.fsc is not None and job.settings.fsc_feedback and job.ext.result_star:
        write_fsc_feedback(job.ext.result_star, np.asarray(outcome.fsc))
    return f"corrected ({outcome.reason})"


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, Fallback) else text


# --------------------------------------------------------------------------------------------
# main
def _joined_message(call: CallName) -> str:
    prev = call.iteration_root(call.iteration - 1) if call.iteration else None
    tag = f"{call.kind}{call.index:03d}"
    if prev and Path(f"{prev}_half1_model.star").is_file():
        return (
            "final iteration (halves joined): plain reconstruction, as RELION's own program. "
            f"To correct the final map run `spisonet.py reconstruct {call.output_root}_half1_"
            f"{tag}_unfil.mrc {call.output_root}_half2_{tag}_unfil.mrc` after the refinement"
        )
    return "no half-maps (classification or sequential run): plain reconstruction"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 also when the correction fell back)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) == 1 and args[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[0] + "\n" + USAGE)
        return 0
    if len(args) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    state: dict[str, bool] = {"plain_written": False}
    try:
        return _run(args[0], state)
    except InputError as exc:
        message = str(exc).splitlines()[0]
        log.error("error (exit 2): %s", message)
        print(f"spisonet-relion: error: {message}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug or e.g. MemoryError: say where, keep RELION alive if we can
        log.error("unexpected %s", _reason(exc))
        log.info("traceback:\n%s", traceback.format_exc().rstrip())
        if state["plain_written"] and not _strict_env():
            _summary("plain reconstruction: fallback: unexpected %s", _reason(exc))
            return 0
        print(f"spisonet-relion: error: {args[0]}: {_reason(exc)}", file=sys.stderr)
        return 1


def _strict_env() -> bool:
    """ISONET_STRICT read leniently (also when the other settings are invalid)."""
    value = os.environ.get("ISONET_STRICT", "").strip().lower()
    return value in {"1", "true", "yes", "on", "y", "t"}


def _run(star: str, state: dict[str, bool]) -> int:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    call = parse_root(star)
    folder = call.job_dir if str(call.job_dir) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{star}: job folder {folder} does not exist")
    _setup_logging(folder / LOG_NAME, call.tag)

    settings_error = None
    try:
        settings, setting_warnings = read_settings()
    except SettingsError as exc:
        settings, setting_warnings = PluginSettings(), []
        settings_error = str(exc)
        strict = _strict_env()
        first_call = call.iteration is not None and call.iteration <= 1
        if call.role != ROLE_OTHER and (first_call or strict):
            raise InputError(f"{settings_error} (stopping at the first iteration)") from None
    for warning in setting_warnings:
        log.warning(warning)

    t = time.perf_counter()
    ext = read_external_star(star)
    for note in ext.notes:
        log.info("note: %s", note)
    if ext.result_star and Path(ext.result_star).exists():
        # only this plugin writes it; a leftover would feed RELION an FSC that is not ours
        Path(ext.result_star).unlink()
        log.info("removed a leftover %s", ext.result_star)
    timings["read STAR"] = time.perf_counter() - t

    plan = Plan(False, "")
    if call.role == ROLE_HALF:
        plan = plan_correction(call, ext, settings, settings_error)
        if plan.meta is not None:
            for note in plan.meta.notes:
                log.info("note: %s", note)
    rdv = None
    if plan.correct and plan.mode_hint != MODE_SOLO:
        rdv = Rendezvous(
            call,
            star,
            partner_wait=settings.partner_wait,
            sync_timeout=settings.sync_timeout,
            heartbeat_timeout=settings.heartbeat_timeout,
        )
        removed = rdv.clean_stale()
        if removed:
            log.info("removed stale markers: %s", ", ".join(removed))
        rdv.announce()
    try:
        t = time.perf_counter()
        plain = plain_reconstruction(ext, fast=settings.fast_reconstruction)
        timings["reconstruction"] = time.perf_counter() - t
        t = time.perf_counter()
        apix = ext.pixel_size or (plan.meta.pixel_size if plan.meta else None)
        try:
            write_result(ext.result, plain, apix)
        except (OSError, ValueError) as exc:
            raise InputError(f"{ext.result}: cannot write the result: {_reason(exc)}") from None
        state["plain_written"] = True
        timings["write"] = time.perf_counter() - t
        log.info("plain reconstruction written: %s (%d³)", ext.result, ext.ori_size)
        if rdv is not None:
            rdv.mark_plain_ready()

        if call.role != ROLE_HALF:
            decision = (
                "plain reconstruction (relion_reconstruct or custom root)"
                if call.role == ROLE_OTHER
                else _joined_message(call)
            )
            if settings_error and call.role != ROLE_OTHER:
                log.error("invalid settings: %s", settings_error)
            _summary("%s", decision)
            _log_timings(timings)
            return 0
        if not plan.correct:
            if plan.reason.startswith("fallback"):
                log.error("FALLBACK to the plain map: %s", plan.reason[len("fallback: ") :])
                if settings.strict:
                    raise InputError(f"ISONET_STRICT: {plan.reason}")
            _summary("plain reconstruction: %s", plan.reason)
            _log_timings(timings)
            return 0

        _summary("correcting: %s", plan.reason)
        job = _Job(call, ext, settings, plan, plain, timings)
        try:
            if rdv is None:
                mode, why = MODE_SOLO, "--sequential_halves_recons on the command line"
            else:
                t = time.perf_counter()
                mode, why = rdv.resolve()
                timings["pairing"] = time.perf_counter() - t
            log.info("mode %s: %s", mode, why)
            if mode == MODE_WORKER:
                decision = correct_joint(job, rdv)
            elif mode == MODE_WAITER:
                decision = receive(job, rdv)
            else:
                decision = correct_solo(job)
        except Exception as exc:
            log.error("FALLBACK to the plain map: %s", _reason(exc))
            log.info("traceback:\n%s", traceback.format_exc().rstrip())
            if settings.strict:
                print(f"spisonet-relion: error (ISONET_STRICT): {_reason(exc)}", file=sys.stderr)
                return 1
            _summary("plain reconstruction: fallback: %s", _reason(exc))
            _log_timings(timings)
            return 0
        timings["total"] = time.perf_counter() - started
        _summary("%s", decision)
        _log_timings(timings)
        return 0
    finally:
        if rdv is not None:
            rdv.close()
