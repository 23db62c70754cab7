"""The three process modes of a run: one process, spawned DDP processes, ``torchrun``.

The launcher's environment is an argument (:class:`~spIsoNet.engine.device.LaunchEnv`, read at
the edge with :func:`~spIsoNet.engine.device.launcher_env`): this module never reads
``RANK``/``WORLD_SIZE`` itself.

* One process (CPU or one GPU): :func:`run_work` runs :func:`~spIsoNet.engine.work.run_jobs` here.
* Several GPUs (or ``cpu_processes > 1``): one spawned process per device, rendezvous through a
  file store in a private temporary folder; predictions come back in shared memory.
* ``torchrun``: every launched process calls ``correct_maps``; :func:`process_group` joins the
  launcher's group for the whole call and :func:`run_work` runs this process's part.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from spIsoNet.engine import distributed, interrupt
from spIsoNet.engine.device import DevicePlan, LaunchEnv
from spIsoNet.engine.plan import WorkSpec
from spIsoNet.engine.work import RunOutput, run_jobs
from spIsoNet.errors import InputError
from spIsoNet.log import get_logger

log = get_logger("engine")

__all__ = ["process_group", "run_work"]


@contextlib.contextmanager
def process_group(
    launch: LaunchEnv | None, devices: DevicePlan
) -> Iterator[distributed.DistContext | None]:
    """Join the ``torchrun`` group for the duration of the block (None when not launched).

    The CPU thread count of this process is restored on exit.
    """
    old_threads = torch.get_num_threads()
    ctx = distributed.join_launcher(launch, devices) if launch is not None else None
    try:
        yield ctx
    finally:
        torch.set_num_threads(old_threads)
        if ctx is not None:
            distributed.leave(ctx)


def run_work(work: WorkSpec, devices: DevicePlan, ctx: distributed.DistContext | None) -> RunOutput:
    """Run ``work`` in the process mode that ``devices`` and ``ctx`` call for.

    Parameters
    ----------
    work
        The planned work.
    devices
        Devices and processes of this node.
    ctx
        The ``torchrun`` context from :func:`process_group`, or None.

    Returns
    -------
    RunOutput
        Complete on the main process.
    """
    if ctx is not None:
        return run_jobs(work, ctx)
    if devices.n_procs > 1:
        return _run_spawned(work, devices)
    return run_jobs(work, distributed.single_process(devices))


def _spawn_entry(rank, world, store, devices, work, shared, folder, log_level):
    """Body of each spawned process (module level so that it can be pickled)."""
    import signal

    from spIsoNet.log import setup_logging

    # Ctrl-C reaches the whole process group: the parent decides and stops the children
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_logging(log_level if rank == 0 else max(log_level, 30))
    ctx = distributed.join_spawned(rank, world, store, devices)
    try:
        result = run_jobs(work, ctx)
        if ctx.is_main:
            for target, volume in zip(shared, result.predictions):
                target.copy_(torch.from_numpy(volume))
            Path(folder, "summary.json").write_text(json.dumps(result.summary()))
    except InputError as exc:  # one line for the parent to raise (out of memory ...)
        with contextlib.suppress(OSError):
            Path(folder, f"error{rank}.txt").write_text(str(exc))
        raise
    finally:
        distributed.leave(ctx)


def _run_spawned(work: WorkSpec, devices: DevicePlan) -> RunOutput:
    import torch.multiprocessing as mp

    n = work.jobs[0].maps[0].shape[0]
    count = sum(len(job.predict) for job in work.jobs)
    shared = [torch.zeros((n, n, n), dtype=torch.float32).share_memory_() for _ in range(count)]
    with tempfile.TemporaryDirectory(prefix="spisonet_ddp_") as tmp:
        context = mp.spawn(
            _spawn_entry,
            args=(
                devices.n_procs,
                os.path.join(tmp, "rendezvous"),
                devices,
                work,
                shared,
                tmp,
                log.getEffectiveLevel(),
            ),
            nprocs=devices.n_procs,
            join=False,
        )
        try:
            while not context.join(timeout=0.5):
                interrupt.check()
        except Exception:
            errors = sorted(Path(tmp).glob("error*.txt"))
            if errors:
                raise InputError(errors[0].read_text()) from None
            raise
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
        summary = json.loads(Path(tmp, "summary.json").read_text())
    return RunOutput(predictions=[t.numpy() for t in shared], **summary)
