"""Answering SIGINT/SIGTERM within seconds, whatever the network size.

Inside :func:`handle_signals` a signal only sets a flag; the training loop checks it before every
micro-batch and the prediction before every batch of tiles (:func:`check`), and raises
:class:`Interrupted` there, so the checkpoint of the last finished epoch (written atomically at
the end of each epoch) is the state a ``--resume`` continues from. One forward and backward pass
of a large network on a CPU can take minutes; if the main thread has not left the block
``grace`` seconds after the signal, a watchdog thread (woken by the signal through
:func:`signal.set_wakeup_fd`, while the main thread is still inside a torch operation) calls the
caller's ``on_timeout`` (log the line, remove partial outputs), stops child processes and ends
the process with exit code ``128 + signal``. A second signal raises at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from collections.abc import Callable, Iterator

__all__ = ["Interrupted", "check", "clear", "handle_signals", "request", "requested"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_flag: dict[str, int | None] = {"signum": None}


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (a :class:`KeyboardInterrupt`, so it ends any loop)."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


def requested() -> int | None:
    """Return the signal received inside :func:`handle_signals`, or None."""
    return _flag["signum"]


def request(signum: int = signal.SIGINT) -> None:
    """Ask the running loops to stop at their next :func:`check` (as a signal would)."""
    _flag["signum"] = int(signum)


def clear() -> None:
    """Forget a stop request."""
    _flag["signum"] = None


def check() -> None:
    """Raise :class:`Interrupted` when a stop was requested."""
    signum = _flag["signum"]
    if signum is not None:
        raise Interrupted(signum)


def _stop_children() -> None:
    import multiprocessing

    for child in multiprocessing.active_children():
        with contextlib.suppress(Exception):
            child.terminate()


@contextlib.contextmanager
def handle_signals(
    on_timeout: Callable[[int], None] | None = None, grace: float = 5.0
) -> Iterator[None]:
    """Catch SIGINT and SIGTERM for the block (main thread only; elsewhere it does nothing).

    Parameters
    ----------
    on_timeout
        Called from the watchdog thread with the signal number when the main thread has not
        reached a :func:`check` within ``grace`` seconds, just before the process ends.
    grace
        Seconds the main thread gets to stop by itself.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _flag["signum"] = None
    done = threading.Event()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def handler(signum, _frame):
        if _flag["signum"] is not None:  # second signal: stop now
            raise Interrupted(signum)
        _flag["signum"] = signum

    def watchdog():
        while not done.is_set():
            ready, _, _ = select.select([read_fd], [], [], 0.5)
            if not ready:
                continue
            data = os.read(read_fd, 64)
            if not data:
                return
            signum = data[-1]
            if signum not in SIGNALS:
                continue
            if done.wait(grace):
                return
            with contextlib.suppress(Exception):
                if on_timeout is not None:
                    on_timeout(signum)
            _stop_children()
            os._exit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    thread = threading.Thread(target=watchdog, name="spisonet-interrupt-watchdog", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(old_fd)
        for s, h in previous.items():
            signal.signal(s, h)
        thread.join(timeout=2.0)
        os.close(read_fd)
        os.close(write_fd)
        _flag["signum"] = None
