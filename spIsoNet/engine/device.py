"""Choosing the compute devices once, from the settings and the environment (the engine's edge).

The home of three policies: which devices a run uses (:func:`plan_devices`), how many CPU
threads it may start (:func:`cpu_threads`: ``--ncpus``, else ``OMP_NUM_THREADS``, never more than
the cores of this process's affinity mask) and which reduced precision autocast uses
(:func:`autocast_dtype`). torch is imported only where it is used, so
:func:`cpu_threads` and :func:`launcher_env` are cheap to call from edges that do not train.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from spIsoNet.errors import InputError
from spIsoNet.log import get_logger

if TYPE_CHECKING:
    import torch

log = get_logger("engine")


@dataclass(frozen=True)
class DevicePlan:
    """Where training and prediction run.

    Attributes
    ----------
    kind
        ``"cpu"`` or ``"cuda"``.
    gpu_ids
        CUDA device numbers used, one process each (empty on CPU).
    n_procs
        Number of processes on this node (``len(gpu_ids)`` on CUDA).
    threads
        CPU threads per process.
    """

    kind: str
    gpu_ids: tuple[int, ...] = field(default_factory=tuple)
    n_procs: int = 1
    threads: int = 1

    def describe(self) -> str:
        """``cuda:0 (name), ...`` or ``cpu (p process(es) × t thread(s))``."""
        if self.kind == "cuda":
            import torch

            names = [
                f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                if torch.cuda.is_available()
                else f"cuda:{i}"
                for i in self.gpu_ids
            ]
            return ", ".join(names)
        return f"cpu ({self.n_procs} process(es) × {self.threads} thread(s))"


def parse_gpu_ids(
    value: str | int | list[int] | tuple[int, ...] | None, name: str = "--gpuID"
) -> list[int] | None:
    """``"0,1,3"`` / ``[0, 1]`` / ``2`` → list of ids (order kept, no duplicates), or None.

    ``name`` is the setting's name in messages (``--gpuID``, ``ISONET_GPUS``).
    """
    if value is None:
        return None
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        text = value.strip().strip("()[]")
        if text.lower() in ("", "none"):
            return None
        try:
            items = [int(part) for part in text.replace(" ", "").split(",") if part != ""]
        except ValueError:
            raise InputError(f"{name} {value}: expected comma-separated GPU numbers") from None
    else:
        try:
            items = [int(v) for v in value]
        except (TypeError, ValueError):
            raise InputError(f"{name} {value}: expected GPU numbers") from None
    if any(i < 0 for i in items):
        raise InputError(f"{name} {value}: GPU numbers must be >= 0")
    return list(dict.fromkeys(items))


def plan_devices(
    device: str = "auto",
    gpu_ids=None,
    ncpus: int | None = None,
    cpu_processes: int = 1,
    environ: Mapping[str, str] | None = None,
    launched: int = 1,
) -> DevicePlan:
    """Resolve ``device`` (``auto|cpu|cuda``), ``gpu_ids`` and ``ncpus`` into a :class:`DevicePlan`.

    GPUs requested (``gpu_ids``) on a machine without one, or with ``device="cpu"``: a warning,
    and the run uses the CPU. Threads: :func:`cpu_threads` (``environ`` for
    ``OMP_NUM_THREADS``, default ``os.environ``), logged, shared by the ``cpu_processes``
    processes, or by the ``launched`` processes that a launcher (torchrun) started on this node.

    Raises
    ------
    InputError
        ``cuda`` requested but unavailable, or a GPU number that does not exist.
    """
    import torch

    device = (device or "auto").lower()
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, got {device!r}")
    ids = parse_gpu_ids(gpu_ids)
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    use_cuda = device == "cuda" or (device == "auto" and available > 0)
    if ncpus is not None and ncpus < 1:
        raise InputError(f"--ncpus must be >= 1, got {ncpus}")
    threads_total, reason = _thread_choice(ncpus, os.environ if environ is None else environ)
    if use_cuda:
        if available == 0:
            raise InputError("--device cuda: no CUDA GPU is available (use --device cpu)")
        ids = ids if ids is not None else list(range(available))
        missing = [i for i in ids if i >= available]
        if missing:
            raise InputError(
                f"--gpuID: GPU {missing[0]} does not exist ({available} visible GPU(s))"
            )
        return DevicePlan("cuda", tuple(ids), len(ids), max(1, threads_total // len(ids)))
    if ids is not None:
        why = "--device cpu" if device == "cpu" else "no CUDA GPU is available"
        log.warning("--gpuID %s ignored: %s; running on the CPU", gpu_ids, why)
    n_procs = max(1, int(cpu_processes))
    log.info("CPU threads: %d (%s)", threads_total, reason)
    share = n_procs * max(1, int(launched))
    return DevicePlan("cpu", (), n_procs, max(1, threads_total // share))


def cpu_threads(ncpus: int | None = None, environ: Mapping[str, str] | None = None) -> int:
    """CPU threads a run may use (all its processes together).

    Parameters
    ----------
    ncpus
        Requested threads (``--ncpus``, ``ISONET_NCPUS``); None: ``OMP_NUM_THREADS`` if set, else
        every core this process may run on.
    environ
        Environment to read ``OMP_NUM_THREADS`` from (default ``os.environ``).

    Returns
    -------
    int
        At least 1 and never more than the cores of the affinity mask
        (:func:`spIsoNet.fourier.available_cores`; ``os.cpu_count()`` counts the whole machine).
    """
    return _thread_choice(ncpus, os.environ if environ is None else environ)[0]


def _thread_choice(ncpus: int | None, environ: Mapping[str, str]) -> tuple[int, str]:
    from spIsoNet.fourier import available_cores

    cores = available_cores()
    if ncpus:
        n = max(1, min(int(ncpus), cores))
        capped = f", capped to the {cores} available" if n < ncpus else ""
        return n, f"--ncpus {ncpus}{capped}"
    text = str(environ.get("OMP_NUM_THREADS", "")).split(",")[0].strip()
    if text:
        try:
            omp = int(text)
        except ValueError:
            omp = 0
        if omp > 0:
            n = min(omp, cores)
            capped = f", capped to the {cores} available" if n < omp else ""
            return n, f"OMP_NUM_THREADS={omp}{capped}"
    return cores, f"the {cores} core(s) this process may run on"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX tiles or AVX-512 BF16).

    Elsewhere oneDNN emulates bfloat16 and autocast is slower than float32.
    """
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def autocast_dtype(device_type: str, requested: bool | None) -> torch.dtype | None:
    """Return the reduced precision autocast uses for training and prediction, or None (float32).

    Parameters
    ----------
    device_type
        ``"cuda"`` or ``"cpu"``.
    requested
        The ``mixed_precision`` setting: None (auto), True or False.

    Returns
    -------
    torch.dtype or None
        bfloat16 where the device computes it natively: a GPU with bfloat16, a CPU with AMX or
        AVX-512 BF16 (3D convolutions 2.5–4× faster than float32 on an AMX Xeon, the losses the
        same, docs/benchmarks.md). Without it: float16 on a GPU (trained with a gradient scaler)
        only when ``requested`` is True; float32 on a CPU (emulated bfloat16 is slower than
        float32; a warning when it was requested). None when ``requested`` is False.
    """
    if requested is False:
        return None
    import torch

    if device_type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16 if requested else None
    if cpu_has_native_bf16():
        return torch.bfloat16
    if requested:
        log.warning(
            "mixed precision: this CPU has no native bfloat16 (AMX / AVX-512 BF16); "
            "training in float32"
        )
    return None


@dataclass(frozen=True)
class LaunchEnv:
    """Process coordinates given by ``torchrun`` (or a launcher setting the same variables)."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int = 1


def launcher_env(environ=None) -> LaunchEnv | None:
    """Read ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (torchrun); None when not launched that way."""
    env = os.environ if environ is None else environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_RANK", rank))
        local_world = max(1, int(env.get("LOCAL_WORLD_SIZE", 1)))
    except ValueError:
        raise InputError(
            "RANK/WORLD_SIZE/LOCAL_RANK environment variables must be integers"
        ) from None
    if world <= 1:
        return None
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in env:
            raise InputError(f"launched with WORLD_SIZE={world} but {name} is not set")
    return LaunchEnv(rank, world, local, local_world)
