"""One stage timer for the whole package: ``with stage_timer(timings, "train"): ...``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, MutableMapping


@contextlib.contextmanager
def stage_timer(timings: MutableMapping[str, float], stage: str) -> Iterator[None]:
    """Add the wall time (s) of the ``with`` block to ``timings[stage]``.

    Parameters
    ----------
    timings
        Stage name → seconds; a stage timed twice accumulates.
    stage
        Name of the stage.

    The time is recorded even when the block raises, so a failed run still reports where its
    time went.
    """
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started
