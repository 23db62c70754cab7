"""The engine's settings, validated in one place (:meth:`EngineSettings.validate`).

Every edge builds one :class:`EngineSettings` (``EngineSettings.from_mapping`` keeps the
defaults for values that are None) and names the settings in its own vocabulary in messages:
the command line passes ``names=CLI_NAMES`` (``spIsoNet.cli.cmd_reconstruct``), the RELION
plugin its ``ISONET_*`` variables, the library itself uses the field names. This module imports
neither torch nor numpy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from spIsoNet.errors import InputError

__all__ = ["DEVICES", "LR_SCHEDULES", "NORMS", "SIZED_DEFAULTS", "EngineSettings", "split_batch"]

#: normalisation layers of the U-Net (see spIsoNet.engine.unet)
NORMS = ("group", "batch", "none")
#: learning-rate schedules (spIsoNet.engine.train.learning_rate_at)
LR_SCHEDULES = ("constant", "cosine")
#: Defaults of the network size and training cubes a user did not give, by the kind of device
#: the training runs on (:meth:`EngineSettings.sized`; the one home of these numbers, the RELION
#: plugin's too). A GPU gets the published network and cubes. On a CPU that network costs
#: minutes per optimizer step (one 237 s step at box 64 on one core, README), so a CPU gets
#: the width-16 network on 32³ cubes of the published tool's CPU budget
#: (docs/benchmarks.md, quality benchmark). The learning rate too: a short CPU budget (200
#: steps) needs 1e-3 to train the GroupNorm width-16 network to a useful state (worst-direction
#: gain of the network alone +26 % against +11 % at 3e-4 over six cases, docs/benchmarks.md);
#: the GPU keeps the published 3e-4 for its long budget.
SIZED_DEFAULTS: dict[str, dict[str, int | float]] = {
    "gpu": {
        "n_subvolume": 1000,
        "cube_size": 64,
        "predict_crop_size": 80,
        "net_width": 64,
        "learning_rate": 3e-4,
    },
    "cpu": {
        "n_subvolume": 200,
        "cube_size": 32,
        "predict_crop_size": 48,
        "net_width": 16,
        "learning_rate": 1e-3,
    },
}
#: values of ``device``
DEVICES = ("auto", "cpu", "cuda")


def split_batch(
    batch_size: int, world_size: int, acc_batches: int, *, names: Mapping[str, str] | None = None
) -> int:
    """Per-process micro-batch of one optimizer step.

    Parameters
    ----------
    batch_size
        Cubes per optimizer step (all processes together).
    world_size
        Number of processes.
    acc_batches
        Micro-batches accumulated per step on each process.
    names
        Setting name → the edge's name for it, used in messages (default: the field names).

    Returns
    -------
    int
        ``batch_size / (world_size · acc_batches)``.

    Raises
    ------
    InputError
        ``acc_batches < 1`` or a batch that cannot be split evenly.
    """
    names = names or {}
    acc, batch = names.get("acc_batches", "acc_batches"), names.get("batch_size", "batch_size")
    if acc_batches < 1:
        raise InputError(f"{acc} {acc_batches}: must be >= 1")
    parts = world_size * acc_batches
    if batch_size < parts:
        raise InputError(
            f"{batch} {batch_size}: smaller than processes × acc_batches = "
            f"{world_size} × {acc_batches}; raise {batch} or lower {acc}"
        )
    if batch_size % parts:
        raise InputError(
            f"{batch} {batch_size}: not a multiple of processes × acc_batches = {parts}"
        )
    return batch_size // parts


@dataclass
class EngineSettings:
    """Settings of the correction engine (command-line flags in ``cmd_reconstruct.CLI_NAMES``).

    Attributes
    ----------
    epochs
        Training epochs; 0 with a pretrained model = predict only.
    alpha, beta
        Weights of the rotation-equivariance term and of the cross-half (noise2noise) terms.
    n_subvolume
        Training cubes drawn per run; one epoch = ``n_subvolume // batch_size`` optimizer steps.
        This and ``cube_size``, ``predict_crop_size`` and ``net_width``: None = sized by the
        device (:data:`SIZED_DEFAULTS`, :meth:`sized`).
    cube_size
        Training cube edge (voxels), a multiple of ``2**net_depth``.
    predict_crop_size
        Prediction tile edge (voxels); rounded up to a multiple of ``2**net_depth``.
    batch_size
        Cubes per optimizer step (default 4 with one process, 2 × processes otherwise).
    acc_batches
        Micro-batches accumulated per step (memory ÷ acc_batches, same result).
    learning_rate
        AdamW (peak) learning rate.
    lr_schedule
        ``constant`` or ``cosine`` (warm-up over 5 % of the planned steps, then a cosine decay
        to 10 % of ``learning_rate``), see :func:`spIsoNet.engine.train.learning_rate_at`.
    net_width, net_depth
        Base channels and number of down-samplings of the U-Net.
    seed
        Random seed (None: drawn and reported, so a run can be repeated).
    device
        ``auto``, ``cpu`` or ``cuda``.
    gpu_ids
        GPUs to use (``"0,1"`` or a list), default all visible.
    mixed_precision
        bfloat16 autocast for the network (the Fourier parts of the loss stay float32). None
        (default, "auto"): on where the device computes bfloat16 natively (GPUs with bfloat16,
        CPUs with AMX or AVX-512 BF16: same quality, 2–5× faster training on such a CPU,
        docs/benchmarks.md), float32 elsewhere; True: also float16 on GPUs without bfloat16;
        False: float32. See :func:`spIsoNet.engine.device.autocast_dtype`.
    independent
        Train and predict each half from its own data only (gold-standard independent halves).
    ncpus
        CPU threads (default: the cores this process may run on, see
        :func:`spIsoNet.engine.device.cpu_threads`).
    compile
        ``torch.compile`` the network (opt-in; off by default because of driver/Triton failures).
    norm
        Normalisation layer ``group`` (default), ``batch`` or ``none`` (see spIsoNet.engine.unet).
    n_conv
        Convolutions per U-Net block.
    cpu_processes
        DDP processes on CPU (gloo); mainly for testing the multi-process path without GPUs.
    resume
        Continue from ``<output_dir>/<model_name>.pt`` (weights, optimizer, epoch, history).
    predict_batch_size
        Tiles per forward pass at prediction (default 4 on GPU, 1 on CPU).
    show_progress
        tqdm progress bars on the main process.
    time_limit
        Seconds of training per run (None: no limit), the cost knob. When exceeded, training
        stops after the current optimizer step (logged; that partial epoch counts as done, its
        model is saved and used) and prediction still runs. With ``independent`` the two models
        share the budget.
    keep_measured
        Data-consistency step after recombination (:mod:`spIsoNet.engine.consistency`): a
        Fourier component keeps the input where the input clearly beats the network's output
        (measured against the other half), so a poor network cannot degrade what the data
        determine (default on; off = the published method's plain replacement inside
        ``limit_res``).
    fourier_crop
        Train and predict on the maps Fourier-cropped to the smallest grid that holds every
        frequency up to ``limit_res`` (:func:`spIsoNet.engine.plan.working_box`); the network's
        output is padded back to the input's grid. Nothing the correction keeps is lost (beyond
        ``limit_res`` the corrected map is the input's own data); cubes of the same edge then
        span a larger part of the particle, at ``(n / m)³`` fewer voxels per map.
    """

    epochs: int = 30
    alpha: float = 1.0
    beta: float = 0.5
    n_subvolume: int | None = None
    cube_size: int | None = None
    predict_crop_size: int | None = None
    batch_size: int | None = None
    acc_batches: int = 2
    learning_rate: float | None = None
    net_width: int | None = None
    net_depth: int = 3
    seed: int | None = None
    device: str = "auto"
    gpu_ids: str | list[int] | None = None
    mixed_precision: bool | None = None
    independent: bool = False
    ncpus: int | None = None
    compile: bool = False
    norm: str = "group"
    n_conv: int = 3
    cpu_processes: int = 1
    resume: bool = False
    predict_batch_size: int | None = None
    show_progress: bool = True
    time_limit: float | None = None
    keep_measured: bool = True
    lr_schedule: str = "constant"
    fourier_crop: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> EngineSettings:
        """Build settings from ``{field: value}``; None values keep the field's default.

        Raises
        ------
        TypeError
            A key that is not a field (a programming error at the edge, not bad user input).
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise TypeError(f"EngineSettings has no field(s) {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items() if v is not None})

    def sized(self, kind: str) -> EngineSettings:
        """Return a copy with the device-sized fields the user left at None filled in.

        Parameters
        ----------
        kind
            ``"gpu"`` or ``"cpu"`` (also ``"cuda"``): the device the training runs on.
        """
        defaults = SIZED_DEFAULTS["gpu" if kind in ("gpu", "cuda") else "cpu"]
        return self.replace(**{k: v for k, v in defaults.items() if getattr(self, k) is None})

    @staticmethod
    def sized_default(name: str) -> str:
        """``"64 on a GPU, 16 on the CPU"``: the defaults of a sized field, for help texts."""
        return f"{SIZED_DEFAULTS['gpu'][name]} on a GPU, {SIZED_DEFAULTS['cpu'][name]} on the CPU"

    def replace(self, **changes: object) -> EngineSettings:
        """Return a copy with ``changes`` applied (:func:`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def as_plain(self) -> dict[str, object]:
        """``{field: value}`` with values as JSON-ready scalars (lists of GPUs as text)."""
        return {
            k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
            for k, v in dataclasses.asdict(self).items()
        }

    def validate(
        self, *, box: int | None = None, world: int = 1, names: Mapping[str, str] | None = None
    ) -> None:
        """Check every setting; the first problem raises one line naming the setting.

        Parameters
        ----------
        box
            Edge of the maps (voxels), when known: ``cube_size`` must fit in it.
        world
            Number of processes the batch is split over.
        names
            Field → the edge's name for it (``"--cube_size"``, ``"ISONET_CUBE_SIZE"``); fields
            missing from it are named as they are.

        Raises
        ------
        InputError
            E.g. ``"--cube_size 30: must be a multiple of 2^net_depth = 8"``.
        """
        names = names or {}

        def fail(name: str, problem: str) -> None:
            raise InputError(f"{names.get(name, name)} {getattr(self, name)!s}: {problem}")

        sized = set(SIZED_DEFAULTS["cpu"])
        for name in ("epochs", "n_subvolume", "cube_size", "predict_crop_size", "acc_batches"):
            value = getattr(self, name)
            if value is None and name in sized:
                continue  # sized by the device later (checked again then)
            if isinstance(value, bool) or not isinstance(value, int):
                fail(name, "must be an integer")
        for name in ("net_width", "net_depth", "n_conv", "n_subvolume", "cpu_processes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                fail(name, "must be >= 1")
        if self.epochs < 0:
            fail("epochs", "must be >= 0")
        if self.lr_schedule not in LR_SCHEDULES:
            fail("lr_schedule", f"must be one of {', '.join(LR_SCHEDULES)}")
        if self.norm not in NORMS:
            fail("norm", f"must be one of {', '.join(NORMS)}")
        if str(self.device).lower() not in DEVICES:
            fail("device", f"must be one of {', '.join(DEVICES)}")
        multiple = 2**self.net_depth
        if self.cube_size is not None:
            if self.cube_size < multiple or self.cube_size % multiple:
                fail("cube_size", f"must be a multiple of 2^net_depth = {multiple}")
            if box is not None and self.cube_size > box:
                fail("cube_size", f"larger than the map box {box}")
        if self.predict_crop_size is not None and self.predict_crop_size < multiple:
            fail("predict_crop_size", f"must be >= 2^net_depth = {multiple}")
        for name in ("alpha", "beta"):
            if not getattr(self, name) >= 0:
                fail(name, "must be >= 0")
        if self.learning_rate is not None and not self.learning_rate > 0:
            fail("learning_rate", "must be > 0")
        for name in ("ncpus", "predict_batch_size", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                fail(name, "must be >= 1")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            fail("seed", "must be >= 0")
        if self.time_limit is not None and not self.time_limit > 0:
            fail("time_limit", "must be > 0 seconds")
        if self.acc_batches < 1:
            fail("acc_batches", "must be >= 1")
        if self.batch_size is not None:
            split_batch(self.batch_size, world, self.acc_batches, names=names)
        from spIsoNet.engine.device import parse_gpu_ids  # torch-free

        parse_gpu_ids(self.gpu_ids, name=names.get("gpu_ids", "gpu_ids"))
