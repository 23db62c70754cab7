"""The RELION plugin program: ``spisonet-relion <root>_external_reconstruct.star``.

Set ``RELION_EXTERNAL_RECONSTRUCT_EXECUTABLE=spisonet-relion`` and run relion_refine with
``--external_reconstruct``. Each call:

1. reads the STAR file and the three arrays, reconstructs the map exactly as RELION's
   ``relion_external_reconstruct`` and writes it to the result path (temporary name + rename):
   the *plain* result, always in place before anything else is tried;
2. for the half calls of a gold-standard refinement whose start conditions hold (healpix order,
   resolution: :mod:`.decision`), pairs up with the other half (:mod:`.sync`), corrects the
   half-maps (:mod:`.modes`, :mod:`.correction`) and replaces the result by the corrected map.

Never kills a refinement: any problem after step 1 leaves the plain map, is logged loudly and
the exit status is 0 (``ISONET_STRICT=True`` turns that into exit 1). Exit 2 only when the plain
map cannot be made (unreadable, truncated or inconsistent STAR/arrays, wrong sizes), with one
line naming the file. Invalid ``ISONET_*`` values stop the job at its first iteration (exit 2,
nothing lost yet); at later iterations (a continued run) they are logged as an error and the
plain map is used. SIGTERM/SIGINT: "interrupted" in the log, no partial file, exit 143/130.

A call that does not correct imports only numpy and mrcfile (scipy for boxes whose internal
grid is 96 or more); torch, pandas and matplotlib load only for a correction.

One log per job folder, ``spisonet_relion.log`` (both halves, timestamps, decision and reason,
stage timings, before/after metrics); short summary lines on stdout (RELION's run.out).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from spIsoNet.engine import interrupt
from spIsoNet.errors import InputError
from spIsoNet.io.relion_arrays import read_fourier_array, write_result
from spIsoNet.log import get_logger, setup_tagged_logging, summary
from spIsoNet.timing import stage_timer

from .call import ROLE_HALF, ROLE_OTHER, CallName, ExternalStar, parse_root, read_external_star
from .decision import Outcome, Plan, plan_correction
from .reconstruction import GridGeometry, reconstruct
from .settings import PluginSettings, SettingsError, read_settings, strict_from_env

LOG_NAME = "spisonet_relion.log"
USAGE = "usage: spisonet-relion <root>_external_reconstruct.star   (called by relion_refine)"

log = get_logger("relion")


def help_text() -> str:
    """``--help``: usage, every ``ISONET_*`` setting with its default, where to read more."""
    lines = [
        "spisonet-relion: RELION external-reconstruct plugin (spIsoNet in-loop correction).",
        USAGE,
        "",
        "Use: export RELION_EXTERNAL_RECONSTRUCT_EXECUTABLE=spisonet-relion and run",
        "relion_refine(_mpi) --auto_refine --split_random_halves ... --external_reconstruct.",
        "Calls that do not correct write exactly relion_external_reconstruct's map.",
        "",
        "Settings (environment variables, default in brackets):",
    ]
    for name, default in PluginSettings.defaults():
        shown = "unset" if default is None else default
        lines.append(f"  {name:<28s} [{shown}]")
    lines += [
        "",
        "What each setting does, the start conditions, the resolution used and the files kept:",
        "README.md of spIsoNet, section 'Using spIsoNet inside RELION (external reconstruct)'.",
        "Log of every call: <job folder>/spisonet_relion.log.",
    ]
    return "\n".join(lines)


def plain_reconstruction(ext: ExternalStar, fast: bool = False) -> np.ndarray:
    """RELION's reconstruction of this call (float32 ``N³``).

    ``fast``: only the first 2 of the 10 gridding iterations in float64
    (``ISONET_FAST_RECONSTRUCTION``).
    """
    geom = GridGeometry.from_call(ext.ori_size, ext.current_size, ext.padding)
    arrays = [
        read_fourier_array(ext.data_real, geom.file_shape, "data_real"),
        read_fourier_array(ext.data_imag, geom.file_shape, "data_imag"),
        read_fourier_array(ext.weight, geom.file_shape, "weight"),
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


def _log_timings(timings: dict[str, float]) -> None:
    text = ", ".join(f"{k.strip()} {v:.1f} s" for k, v in timings.items())
    log.info("timings: %s", text)


def _joined_message(call: CallName) -> str:
    prev = call.iteration_root(call.iteration - 1) if call.iteration else None
    tag = f"{call.kind}{call.index:03d}"
    if prev and Path(f"{prev}_half1_model.star").is_file():
        return (
            "correction skipped: final iteration (halves joined); the map is RELION's own "
            f"program's. To correct the final map run `spisonet.py reconstruct {call.output_root}"
            f"_half1_{tag}_unfil.mrc {call.output_root}_half2_{tag}_unfil.mrc` after the "
            "refinement"
        )
    return "correction skipped: no half-maps (classification or sequential run)"


def _on_signal(signum, _frame) -> None:
    """Until the correction starts a signal stops the call at once (the plain path is short)."""
    raise interrupt.Interrupted(signum)


def _remove_own_temporaries(call: CallName) -> list[str]:
    """Temporary files of this call (``.<root>...tmp``) and of its models, after a hard stop."""
    folder = call.job_dir if str(call.job_dir) else Path(".")
    names = [Path(call.root).name]
    if call.role != ROLE_OTHER:
        names.append(Path(call.with_half(None).root).name)
    removed = []
    for where in (folder, folder / "spisonet"):
        for path in where.glob(".*.tmp") if where.is_dir() else []:
            if any(path.name.startswith(f".{name}") for name in names):
                path.unlink(missing_ok=True)
                removed.append(path.name)
    return removed


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 also when the correction fell back)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) == 1 and args[0] in ("-h", "--help"):
        try:
            print(help_text(), flush=True)
        except BrokenPipeError:  # e.g. `spisonet-relion --help | head`: no traceback at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if len(args) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    state: dict[str, object] = {"plain_written": False}
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[signum] = signal.signal(signum, _on_signal)
        except ValueError:  # not the main thread (tests): signals stay as they are
            pass
    try:
        return _run(args[0], state)
    except interrupt.Interrupted as exc:  # atomic writes removed their temporaries on the way
        log.error("interrupted by %s: stopping; no partial file left", exc)
        print(f"spisonet-relion: interrupted by {exc}", file=sys.stderr)
        return exc.exit_code
    except InputError as exc:
        message = str(exc).splitlines()[0]
        log.error("error (exit 2): %s", message)
        print(f"spisonet-relion: error: {message}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug or e.g. MemoryError: say where, keep RELION alive if we can
        from .modes import reason_of

        log.error("unexpected %s", reason_of(exc))
        log.info("traceback:\n%s", traceback.format_exc().rstrip())
        if state["plain_written"] and not strict_from_env():
            summary(log, "correction skipped: fallback after unexpected %s", reason_of(exc))
            return 0
        print(f"spisonet-relion: error: {args[0]}: {reason_of(exc)}", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _read_settings(call: CallName) -> tuple[PluginSettings, str | None]:
    """Return the settings, or the defaults and the error text (raises at the first iteration)."""
    try:
        settings, setting_warnings = read_settings()
    except SettingsError as exc:
        first_call = call.iteration is not None and call.iteration <= 1
        if call.role != ROLE_OTHER and (first_call or strict_from_env()):
            raise InputError(f"{exc} (stopping at the first iteration)") from None
        return PluginSettings(), str(exc)
    for warning in setting_warnings:
        log.warning(warning)
    return settings, None


def _check_engine_settings(
    call: CallName, settings: PluginSettings, box: int, error: str | None
) -> str | None:
    """Validate the engine settings of a half call up front (same policy as invalid values)."""
    if error is not None or call.role != ROLE_HALF:
        return error
    from .settings import engine_settings

    try:
        engine_settings(settings, box)
    except InputError as exc:
        first_call = call.iteration is not None and call.iteration <= 1
        if first_call or settings.strict:
            raise InputError(f"invalid setting: {exc} (stopping at the first iteration)") from None
        return f"invalid setting: {exc}"
    return None


def _run(star: str, state: dict[str, object]) -> int:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    call = parse_root(star)
    folder = call.job_dir if str(call.job_dir) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{star}: job folder {folder} does not exist")
    setup_tagged_logging(folder / LOG_NAME, f"{call.tag} pid {os.getpid()}")

    settings, settings_error = _read_settings(call)
    with stage_timer(timings, "read STAR"):
        ext = read_external_star(star)
    if ext.tau2 is None and call.role != ROLE_OTHER:
        raise InputError(
            f"{star}: no data_external_reconstruct_tau2 block (truncated file?); relion_refine "
            "always writes it"
        )
    for note in ext.notes:
        log.info("note: %s", note)
    settings_error = _check_engine_settings(call, settings, ext.ori_size, settings_error)
    if ext.result_star and Path(ext.result_star).exists():
        # only this plugin writes it; a leftover would feed RELION an FSC that is not ours
        Path(ext.result_star).unlink()
        log.info("removed a leftover %s", ext.result_star)

    plan = Plan(Outcome.SKIP, "")
    if call.role == ROLE_HALF:
        plan = plan_correction(call, ext, settings, settings_error)
        if plan.meta is not None:
            for note in plan.meta.notes:
                log.info("note: %s", note)
        if plan.resolution is not None:
            log.info("%s", plan.resolution.describe())
    rdv = None
    if plan.correct and not plan.solo:
        from .sync import Rendezvous

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
        with stage_timer(timings, "reconstruction"):
            plain = plain_reconstruction(ext, fast=settings.fast_reconstruction)
        apix = ext.pixel_size or (plan.meta.pixel_size if plan.meta else None)
        with stage_timer(timings, "write"):
            try:
                write_result(ext.result, plain, apix)
            except (OSError, ValueError) as exc:
                from .modes import reason_of

                raise InputError(
                    f"{ext.result}: cannot write the result: {reason_of(exc)}"
                ) from None
        state["plain_written"] = True
        log.info("plain reconstruction written: %s (%d³)", ext.result, ext.ori_size)
        if rdv is not None:
            rdv.mark_plain_ready()
        return _after_plain(call, ext, settings, settings_error, plan, plain, rdv, timings, started)
    finally:
        if rdv is not None:
            rdv.close()


def _after_plain(call, ext, settings, settings_error, plan, plain, rdv, timings, started) -> int:
    """Everything after the plain map is in place: skip, fall back or correct."""
    if call.role != ROLE_HALF:
        if call.role == ROLE_OTHER:
            decision = "correction skipped: relion_reconstruct or custom root (plain map)"
        else:
            decision = _joined_message(call)
            from .sync import remove_markers

            removed = remove_markers(call)
            if removed:
                log.info("removed the half iterations' markers: %s", ", ".join(removed))
        if settings_error and call.role != ROLE_OTHER:
            log.error("invalid settings: %s", settings_error)
        summary(log, "%s", decision)
        _log_timings(timings)
        return 0
    if plan.outcome is Outcome.FALLBACK:
        log.error("FALLBACK to the plain map: %s", plan.reason)
        if settings.strict:
            raise InputError(f"ISONET_STRICT: {plan.reason}")
        summary(log, "correction skipped: fallback: %s", plan.reason)
        _log_timings(timings)
        return 0
    if plan.outcome is Outcome.SKIP:
        summary(log, "correction skipped: %s", plan.reason)
        _log_timings(timings)
        return 0

    from .modes import CorrectionJob, correct_joint, correct_solo, reason_of, receive
    from .sync import MODE_SOLO, MODE_WAITER, MODE_WORKER

    summary(log, "correcting: %s", plan.reason)

    def stuck(signum: int) -> None:  # the engine's watchdog ends the process after its grace
        removed = _remove_own_temporaries(call)
        name = signal.Signals(signum).name
        log.error(
            "interrupted by %s during the correction: the process is ended (%s)",
            name,
            f"removed {', '.join(removed)}" if removed else "no partial file",
        )

    # During the correction a signal sets a flag that training, prediction and the rendezvous
    # check (so the process stops within seconds even inside a long torch operation).
    with interrupt.handle_signals(on_timeout=stuck):
        try:
            job = CorrectionJob(call, ext, settings, plan, plain, timings)
            if rdv is None:
                mode, why = MODE_SOLO, "--sequential_halves_recons on the command line"
            else:
                with stage_timer(timings, "pairing"):
                    mode, why = rdv.resolve()
            log.info("mode %s: %s", mode, why)
            if mode == MODE_WORKER:
                decision = correct_joint(job, rdv)
            elif mode == MODE_WAITER:
                decision = receive(job, rdv)
            else:
                decision = correct_solo(job)
        except Exception as exc:
            log.error("FALLBACK to the plain map: %s", reason_of(exc))
            log.info("traceback:\n%s", traceback.format_exc().rstrip())
            if settings.strict:
                print(f"spisonet-relion: error (ISONET_STRICT): {reason_of(exc)}", file=sys.stderr)
                return 1
            summary(log, "correction skipped: fallback: %s", reason_of(exc))
            _log_timings(timings)
            return 0
    timings["total"] = time.perf_counter() - started
    summary(log, "%s", decision)
    _log_timings(timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
