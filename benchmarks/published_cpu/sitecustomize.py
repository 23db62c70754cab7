"""CPU shim for running the published (CUDA-only) spIsoNet unmodified on a machine without a GPU.

Put this folder first on ``PYTHONPATH`` when launching the published ``spisonet.py``; Python
imports ``sitecustomize`` at start-up in every interpreter, including the processes the
published tool starts with ``torch.multiprocessing.spawn`` (they inherit the environment). The
shim imports nothing heavy itself: it registers an import hook and patches torch right after
``import torch`` has finished, so a Python that never imports torch is not slowed down.

This is our own code (written for this project's benchmarks); it does not contain or edit any
of the published tool's files. Only what a CPU needs is changed; the published algorithm,
network, losses, budget, defaults and numerics are untouched:

``torch.cuda.device_count() -> 1``
    The published tool starts one training/prediction process per visible GPU and uses the
    count as the DDP world size; on the CPU it gets one process (world size 1), as on a
    one-GPU node.
``torch.cuda.set_device(...)``, ``torch.cuda.synchronize(...)``, ``torch.cuda.empty_cache()``
    No-ops (there is no CUDA device to select, wait for or free).
``torch.cuda.get_device_capability() -> (0, 0)``
    The published tool calls ``torch.compile`` only on GPUs of capability >= 7; on the CPU it
    runs eagerly (compilation needs a C++ tool chain and minutes of start-up; it does not change
    what is computed).
``Tensor.cuda()`` / ``Module.cuda()``
    Return the tensor / module itself (it already lives on the only device, the CPU).
``Tensor.to(d)`` / ``Module.to(d)``
    A CUDA device (``"cuda"``, ``"cuda:k"``, ``torch.device("cuda", k)``, or a bare integer
    rank, which torch reads as ``cuda:k``) is replaced by ``"cpu"``; dtype conversions and
    every other argument are passed on unchanged.
``torch.distributed.init_process_group(backend="nccl")``
    Uses ``"gloo"`` (NCCL is GPU-only); other backends are passed on unchanged.
``DistributedDataParallel(module, device_ids=[k], output_device=k)``
    ``device_ids`` and ``output_device`` are dropped (they must be ``None`` for a CPU module).
``nn.SyncBatchNorm.convert_sync_batchnorm(module)``
    Returns ``module`` unchanged while the world size is 1: torch's SyncBatchNorm refuses CPU
    tensors, and with one process it computes exactly what the original ``BatchNorm3d`` does
    (batch statistics of the local batch), so the network and its numerics are the same.
``torch.cuda.amp.autocast(...)`` / ``torch.cuda.amp.GradScaler(...)``
    A disabled autocast context / a disabled ``torch.amp.GradScaler("cpu")`` (no mixed
    precision on the CPU). The published ``reconstruct`` passes ``mixed_precision=False``, so
    this path is not taken by it; patched so that a call would not crash.

Threads: when ``OMP_NUM_THREADS`` is set, ``torch.set_num_threads`` is called with it in every
process (torch reads the variable too; this makes it explicit).

Seeding (opt-in, off by default): when ``SPISONET_CPU_SHIM_SEED`` is an integer, Python's
``random``, NumPy's global generator and torch are seeded with it in every process once torch
is imported. The published tool has no seed option; this only fixes its random draws (cube
positions, initial weights, rotations) so that a benchmark case can be repeated.

Set ``SPISONET_CPU_SHIM_QUIET=0`` to print one line to stderr per process saying that the shim
is active (default: silent).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys


def _cpu_device(device):
    """Map a CUDA device specification (or a bare integer rank) to ``"cpu"``; else unchanged."""
    if isinstance(device, bool):
        return device
    if isinstance(device, int):
        return "cpu"
    if isinstance(device, str) and device.split(":")[0] == "cuda":
        return "cpu"
    if getattr(device, "type", None) == "cuda" and type(device).__name__ == "device":
        return "cpu"
    return device


def _patch_to(original):
    """Wrap a ``.to`` method so that CUDA devices become the CPU."""

    def to(self, *args, **kwargs):
        if args:
            args = (_cpu_device(args[0]),) + tuple(args[1:])
        if "device" in kwargs:
            kwargs["device"] = _cpu_device(kwargs["device"])
        return original(self, *args, **kwargs)

    to.__doc__ = original.__doc__
    return to


def _patch_torch(torch) -> None:
    """Apply the CPU patches listed in the module docstring to an imported ``torch``."""
    import contextlib

    cuda = torch.cuda
    cuda.device_count = lambda: 1
    cuda.set_device = lambda *args, **kwargs: None
    cuda.synchronize = lambda *args, **kwargs: None
    cuda.empty_cache = lambda: None
    cuda.get_device_capability = lambda *args, **kwargs: (0, 0)

    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    torch.Tensor.to = _patch_to(torch.Tensor.to)
    torch.nn.Module.to = _patch_to(torch.nn.Module.to)

    amp = getattr(cuda, "amp", None)
    if amp is not None:
        amp.autocast = lambda *args, **kwargs: contextlib.nullcontext()
        amp.GradScaler = lambda *args, **kwargs: torch.amp.GradScaler("cpu", enabled=False)

    import torch.distributed as dist
    import torch.nn.parallel

    init_process_group = dist.init_process_group

    def init_cpu(*args, **kwargs):
        if args and args[0] == "nccl":
            args = ("gloo",) + tuple(args[1:])
        if kwargs.get("backend") == "nccl":
            kwargs["backend"] = "gloo"
        return init_process_group(*args, **kwargs)

    dist.init_process_group = init_cpu

    ddp = torch.nn.parallel.DistributedDataParallel
    ddp_init = ddp.__init__

    def ddp_cpu(self, module, *args, **kwargs):
        kwargs.pop("device_ids", None)
        kwargs.pop("output_device", None)
        if args:  # positional device_ids / output_device (the first two after the module)
            args = (None, None) + tuple(args[2:]) if len(args) >= 2 else (None,)
        return ddp_init(self, module, *args, **kwargs)

    ddp.__init__ = ddp_cpu

    sync_bn = torch.nn.SyncBatchNorm
    convert = sync_bn.convert_sync_batchnorm

    def convert_cpu(module, process_group=None):
        world = dist.get_world_size() if dist.is_initialized() else 1
        if world == 1:
            return module
        return convert(module, process_group)

    sync_bn.convert_sync_batchnorm = staticmethod(convert_cpu)

    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))

    seed = os.environ.get("SPISONET_CPU_SHIM_SEED", "")
    if seed.lstrip("-").isdigit():
        import random

        import numpy as np

        random.seed(int(seed))
        np.random.seed(int(seed) % 2**32)  # noqa: NPY002 - the published tool draws from it
        torch.manual_seed(int(seed))

    if os.environ.get("SPISONET_CPU_SHIM_QUIET", "1") == "0":
        print(f"spIsoNet CPU shim active (pid {os.getpid()})", file=sys.stderr)


class _PatchingLoader(importlib.abc.Loader):
    """Delegate loading ``torch`` to its real loader, then apply the patches."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # resource readers, get_source, ...: the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _patch_torch(module)


class _TorchHook(importlib.abc.MetaPathFinder):
    """Find ``torch`` with the regular finders and hand it out with a patching loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader)
        return spec


if "torch" in sys.modules:  # pragma: no cover - only if torch was imported before site
    _patch_torch(sys.modules["torch"])
else:
    sys.meta_path.insert(0, _TorchHook())
