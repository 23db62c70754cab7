"""Rendezvous of the two half processes of one iteration, through files in the job folder.

RELION runs the half1 and half2 calls of an iteration in two MPI ranks, normally at the same
time (possibly on different nodes sharing the job folder); with ``--sequential_halves_recons``
half2 only starts after half1 has returned. The joint correction (3D FSC and training on both
halves) must run once, in one process, and both results must reach RELION.

Protocol (``K`` = the pair key, e.g. ``run_it004_class001``; all files ``K.spisonet_*`` in the
job folder, each created under a temporary name and renamed/linked, so never seen half-written):

1. ``K.spisonet_halfH.arrived`` — written at the start of a call (JSON: pid, host); its mtime is
   the process's heartbeat, refreshed by a thread every few seconds.
2. ``K.spisonet_halfH.plain`` — this half's plain map is in place (its RELION result file).
3. ``K.spisonet_claim`` — created exclusively (hard link, so exactly one process wins):
   ``joint`` with a worker half (the process that saw both plain maps), or ``solo`` (the partner
   did not show up within ``partner_wait`` or died: each half is then corrected on its own).
4. The worker writes its own result, the partner's corrected map as
   ``<partner root>_external_reconstruct_spisonet.mrc`` and ``K.spisonet_halfP.done``
   (JSON status corrected/failed + reason). The waiter installs that map over its own result
   (rename) and returns. If the waiter gives up (timeout, dead worker) it writes
   ``K.spisonet_halfP.abandoned`` and keeps its plain map.

Markers of other iterations of the same output root are removed on arrival; markers of this
iteration older than both halves' STAR files (by more than ``STALE_SLACK`` s, comparing file
times only, so node clocks do not matter) are leftovers of a crashed run and are removed too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from spIsoNet.engine import interrupt
from spIsoNet.io.atomic import write_text_atomic
from spIsoNet.log import get_logger

from .call import CallName

log = get_logger("relion")

#: markers of the current iteration older than the own STAR file by more than this are stale (s)
STALE_SLACK = 300.0
MARKER = ".spisonet_"

MODE_WORKER = "worker"
MODE_WAITER = "waiter"
MODE_SOLO = "solo"


def _write_json_atomic(path: Path, payload: dict, exclusive: bool = False) -> bool:
    """Write JSON under a temporary name, then rename (or hard-link when ``exclusive``).

    The temporary file comes from :func:`spIsoNet.io.atomic.atomic_output`, so markers get the
    umask's permissions (like RELION's files), not mkstemp's 0600. Returns False when
    ``exclusive`` and ``path`` already exists.
    """
    text = json.dumps(payload)
    if not exclusive:
        write_text_atomic(path, text)
        return True
    # exclusive: write a private temporary file completely, then hard-link it into place (the
    # link fails if ``path`` exists, so exactly one process wins); the temporary name goes.
    temporary = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.claim")
    write_text_atomic(temporary, text)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return True


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def marker_pattern(call: CallName) -> re.Pattern[str]:
    """Marker file names of ``call``'s output root and class/body, any iteration (group 1)."""
    base = Path(call.output_root).name
    tag = f"{call.kind}{call.index:03d}"
    return re.compile(
        re.escape(base) + r"_it(\d{3,})_" + re.escape(tag) + re.escape(MARKER) + r".*$"
    )


def remove_markers(call: CallName) -> list[str]:
    """Remove every rendezvous marker of ``call``'s root and class (any iteration); return names.

    The joined call that ends a refinement runs after the last half iteration, whose markers no
    later half call would clean: without this they would stay in the job folder.
    """
    folder = call.job_dir if str(call.job_dir) else Path(".")
    if call.kind is None or call.index is None or not folder.is_dir():
        return []
    pattern = marker_pattern(call)
    removed = []
    for path in folder.iterdir():
        if pattern.match(path.name):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            removed.append(path.name)
    return removed


@dataclass
class WaitOutcome:
    """What a waiting half got: ``status`` corrected/failed/timeout/dead, a reason, a map path."""

    status: str
    reason: str = ""
    map_path: str | None = None
    fsc: list[float] | None = None


class Rendezvous:
    """File rendezvous of one half call with its partner (see the module docstring).

    Parameters
    ----------
    call
        The half call (``call.half`` is 1 or 2).
    star_path
        The call's STAR file (its mtime dates the call, for stale-marker detection).
    partner_wait
        Seconds to wait for the partner to announce itself before going solo.
    sync_timeout
        Seconds a waiting half waits for the worker's result in total.
    heartbeat_timeout
        Seconds without a heartbeat after which a partner counts as dead.
    poll
        Polling interval (s).
    """

    def __init__(
        self,
        call: CallName,
        star_path: str,
        *,
        partner_wait: float,
        sync_timeout: float,
        heartbeat_timeout: float,
        poll: float = 0.5,
    ) -> None:
        if call.half is None:
            raise ValueError("rendezvous needs a half call")
        self.call = call
        self.half = call.half
        self.partner_half = 3 - call.half
        self.folder = call.job_dir if str(call.job_dir) else Path(".")
        joined = call.with_half(None)
        self.key = Path(joined.root).name
        self.star_path = Path(star_path)
        self.partner_wait = float(partner_wait)
        self.sync_timeout = float(sync_timeout)
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.poll = float(poll)
        self.host = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()

    # -- file names -----------------------------------------------------------------------
    def marker(self, what: str, half: int | None = None) -> Path:
        """``<job>/K.spisonet_half<H>.<what>`` (or ``K.spisonet_<what>`` without a half)."""
        name = f"{self.key}{MARKER}half{half}.{what}" if half else f"{self.key}{MARKER}{what}"
        return self.folder / name

    @property
    def claim_path(self) -> Path:
        """``K.spisonet_claim``: who does the joint work (or ``solo``)."""
        return self.marker("claim")

    def partner_map_path(self) -> Path:
        """Where the worker leaves the partner's corrected map."""
        return Path(f"{self.call.partner.root}_external_reconstruct_spisonet.mrc")

    def own_delivery_path(self) -> Path:
        """Where the worker leaves this half's corrected map when this half waits."""
        return Path(f"{self.call.root}_external_reconstruct_spisonet.mrc")

    # -- housekeeping ---------------------------------------------------------------------
    def clean_stale(self) -> list[str]:
        """Remove markers of other iterations and crash leftovers of this one; return names."""
        removed = []
        pattern = marker_pattern(self.call)
        star_time = self._reference_time()
        for path in self.folder.iterdir() if self.folder.is_dir() else []:
            match = pattern.match(path.name)
            if not match:
                continue
            stale = int(match.group(1)) != self.call.iteration
            if not stale and star_time is not None:
                marker_time = _mtime(path)
                stale = marker_time is not None and marker_time < star_time - STALE_SLACK
            if stale:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                removed.append(path.name)
        stale_map = self.own_delivery_path()
        if stale_map.exists():  # a corrected map left by a crashed worker: never install it
            with contextlib.suppress(FileNotFoundError):
                stale_map.unlink()
            removed.append(stale_map.name)
        return removed

    def _reference_time(self) -> float | None:
        """Return the mtime of the older of the two halves' STAR files of this iteration.

        Markers made before it (minus :data:`STALE_SLACK`) belong to an earlier (crashed) run.
        Using the older file keeps a sequential half1's markers valid for half2, whose STAR
        is only written after half1 returned.
        """
        times = [_mtime(self.star_path)]
        partner_star = Path(f"{self.call.partner.root}_external_reconstruct.star")
        times.append(_mtime(partner_star))
        known = [t for t in times if t is not None]
        return min(known) if known else None

    def _fresh(self, path: Path) -> bool:
        """Marker exists and is not older than this iteration's STAR files (minus the slack)."""
        marker_time = _mtime(path)
        if marker_time is None:
            return False
        star_time = self._reference_time()
        return star_time is None or marker_time >= star_time - STALE_SLACK

    # -- announce / heartbeat -------------------------------------------------------------
    def announce(self) -> None:
        """Write this half's ``arrived`` marker and start the heartbeat thread."""
        payload = {"pid": os.getpid(), "host": self.host, "root": self.call.root}
        _write_json_atomic(self.marker("arrived", self.half), payload)
        interval = max(0.05, min(5.0, self.heartbeat_timeout / 4.0))
        self._thread = threading.Thread(
            target=self._beat, args=(interval,), name="spisonet-heartbeat", daemon=True
        )
        self._thread.start()

    def _beat(self, interval: float) -> None:
        own = self.marker("arrived", self.half)
        while not self._stop.wait(interval):
            with contextlib.suppress(OSError):
                os.utime(own)

    def _fs_now(self) -> float:
        """Return the time on the job folder's file system (touch own marker, read its mtime)."""
        own = self.marker("arrived", self.half)
        with contextlib.suppress(OSError):
            os.utime(own)
            return own.stat().st_mtime
        return time.time()

    def mark_plain_ready(self) -> None:
        """Signal that this half's plain map is in place."""
        _write_json_atomic(self.marker("plain", self.half), {"pid": os.getpid()})

    def partner_dead(self) -> str | None:
        """Reason the partner counts as dead (None if alive or unknown)."""
        arrived = self.marker("arrived", self.partner_half)
        info = _read_json(arrived)
        if info is None:
            return None
        if info.get("host") == self.host and not _pid_alive(int(info.get("pid", -1))):
            return f"partner process {info.get('pid')} on {self.host} is gone"
        beat = _mtime(arrived)
        if beat is not None:
            silence = self._fs_now() - beat
            if silence > self.heartbeat_timeout:
                return f"no heartbeat from the partner for {silence:.0f} s"
        return None

    # -- decide who does what -------------------------------------------------------------
    def _try_claim(self, mode: str) -> bool:
        payload = {"mode": mode, "by": self.half, "pid": os.getpid(), "host": self.host}
        if mode == "joint":
            payload["worker"] = self.half
        if _write_json_atomic(self.claim_path, payload, exclusive=True):
            return True
        if self.claim_path.exists() and not self._fresh(self.claim_path):
            with contextlib.suppress(FileNotFoundError):  # a crashed run's claim: drop it
                self.claim_path.unlink()
        return False

    def _mode_from_claim(self) -> str | None:
        if not self._fresh(self.claim_path):
            return None
        claim = _read_json(self.claim_path)
        if claim is None:
            return None
        if claim.get("mode") == "solo":
            return MODE_SOLO
        return MODE_WORKER if int(claim.get("worker", 0)) == self.half else MODE_WAITER

    def resolve(self) -> tuple[str, str]:
        """Decide this half's role; returns ``(mode, reason)``.

        Call after :meth:`mark_plain_ready`. The second half to see both plain maps claims the
        joint work; without a partner after ``partner_wait`` s (or with a dead one) the halves
        are corrected separately (``solo``).
        """
        start = time.monotonic()
        while True:
            mode = self._mode_from_claim()
            if mode is not None:
                claim = _read_json(self.claim_path) or {}
                return mode, f"claim by half{claim.get('by')}: {claim.get('mode')}"
            partner_arrived = self._fresh(self.marker("arrived", self.partner_half))
            partner_plain = self._fresh(self.marker("plain", self.partner_half))
            if partner_plain:
                if self._try_claim("joint"):
                    return MODE_WORKER, "both plain maps ready: this half does the joint work"
                continue
            elapsed = time.monotonic() - start
            reason = None
            if not partner_arrived and elapsed > self.partner_wait:
                reason = f"partner half{self.partner_half} did not start within {elapsed:.0f} s"
            elif partner_arrived:
                dead = self.partner_dead()
                if dead:
                    reason = dead
                elif elapsed > self.sync_timeout:
                    reason = f"partner's plain map not ready after {elapsed:.0f} s"
            if reason is not None:
                if self._try_claim("solo"):
                    return MODE_SOLO, reason
                continue
            self._pause()

    def _pause(self) -> None:
        """Sleep one polling interval; stop here when SIGINT/SIGTERM was received."""
        time.sleep(self.poll)
        interrupt.check()

    # -- worker / waiter ------------------------------------------------------------------
    def partner_abandoned(self) -> bool:
        """Return whether the partner gave up waiting (its ``abandoned`` marker exists)."""
        return self.marker("abandoned", self.partner_half).exists()

    def publish_for_partner(
        self,
        status: str,
        reason: str = "",
        map_path: str | None = None,
        fsc: list[float] | None = None,
    ) -> None:
        """Worker: tell the partner its result (``corrected`` with a map, or ``failed``)."""
        payload = {"status": status, "reason": reason, "map": map_path, "fsc": fsc}
        _write_json_atomic(self.marker("done", self.partner_half), payload)

    def wait_for_worker(self) -> WaitOutcome:
        """Waiter: wait for the worker's ``done`` marker, its death, or the timeout."""
        start = time.monotonic()
        done = self.marker("done", self.half)
        while True:
            if self._fresh(done):
                info = _read_json(done)
                if info is not None:
                    return WaitOutcome(
                        str(info.get("status")),
                        str(info.get("reason", "")),
                        info.get("map"),
                        info.get("fsc"),
                    )
            dead = self.partner_dead()
            if dead is None and not self.marker("arrived", self.partner_half).exists():
                dead = "the worker's marker disappeared"
            if dead is not None:
                # it may have finished just before dying: look once more
                info = _read_json(done) if self._fresh(done) else None
                if info is not None:
                    continue
                self._abandon()
                return WaitOutcome("dead", dead)
            elapsed = time.monotonic() - start
            if elapsed > self.sync_timeout:
                self._abandon()
                return WaitOutcome("timeout", f"no result from the worker after {elapsed:.0f} s")
            self._pause()

    def _abandon(self) -> None:
        with contextlib.suppress(OSError):
            _write_json_atomic(self.marker("abandoned", self.half), {"pid": os.getpid()})

    def close(self) -> None:
        """Stop the heartbeat and remove this half's own presence markers."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for what in ("arrived", "plain"):
            with contextlib.suppress(FileNotFoundError):
                self.marker(what, self.half).unlink()
