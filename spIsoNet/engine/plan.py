"""Planning a correction: everything decided before any training, as one frozen record.

:func:`make_plan` checks the inputs, computes the FSC3D when none is given, applies the
``limit_res`` default policy (:func:`default_limit_res`, the one home of the FSC = 0.143
default), merges a reference's low frequencies, builds the Fourier weight, draws the training
cube corners, lists the models to train (:class:`TrainJob`) and the prediction tiling, and
gathers the checkpoint metadata. It reads and writes no files and starts no process; the result,
a :class:`CorrectionPlan`, is what :mod:`spIsoNet.engine.launch` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from spIsoNet.engine.data import NetworkInput, prepare_input, sample_cube_starts
from spIsoNet.engine.fourier_weight import cube_weight, reference_sphere, weight_to_rfft
from spIsoNet.engine.settings import EngineSettings
from spIsoNet.engine.unet import UNetConfig
from spIsoNet.errors import InputError
from spIsoNet.fourier import GOLD_STANDARD_FSC
from spIsoNet.log import get_logger
from spIsoNet.timing import stage_timer

log = get_logger("engine")

__all__ = [
    "DEFAULT_LIMIT_FSC",
    "CorrectionPlan",
    "TrainJob",
    "WorkSpec",
    "check_inputs",
    "check_limit_res",
    "default_limit_res",
    "effective_batch_size",
    "job_names",
    "make_plan",
    "network_config",
]

#: FSC threshold of the default ``limit_res`` (the gold-standard half-map criterion)
DEFAULT_LIMIT_FSC = GOLD_STANDARD_FSC


@dataclass(frozen=True)
class TrainJob:
    """One model to train: its name, its training maps and which of them to predict.

    Attributes
    ----------
    name
        Checkpoint stem (``<output_dir>/<name>.pt``).
    maps
        Network inputs ``[n, n, n]`` (float32, z-scored): one (single-map or independent mode)
        or two (noise2noise).
    predict
        Indices into ``maps`` of the maps the trained model is applied to.
    """

    name: str
    maps: tuple[np.ndarray, ...]
    predict: tuple[int, ...]


@dataclass(frozen=True)
class WorkSpec:
    """Everything a (possibly spawned) process needs to train and predict; picklable.

    Attributes
    ----------
    jobs
        Models to train, in order.
    corners
        Training cube corners ``[m, 3]`` (int64, z y x).
    weight_rfft
        Fourier weight M on the cube grid, rfft layout ``[c, c, c // 2 + 1]``.
    settings
        The settings, with the seed resolved.
    config
        Network architecture.
    batch_size
        Cubes per optimizer step (all processes together).
    output_dir
        Folder of the checkpoints.
    pretrained
        Checkpoint state to start from, or None.
    extra
        Provenance stored in every checkpoint (voxel size, limit_res, cube size, settings).
    tile, overlap
        Prediction tile edge and overlap (voxels).
    loss_plot
        Called on the main process after every epoch with ``{model name: loss per epoch}``
        (None: no figure); must be picklable when processes are spawned.
    names
        Setting name → the caller's name, for messages (out of memory advice).
    """

    jobs: tuple[TrainJob, ...]
    corners: np.ndarray
    weight_rfft: np.ndarray
    settings: EngineSettings
    config: UNetConfig
    batch_size: int
    output_dir: str
    pretrained: dict | None
    extra: dict
    tile: int
    overlap: int
    loss_plot: Callable[[dict[str, list[float]]], object] | None = None
    names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CorrectionPlan:
    """A planned correction: the work of the processes and what recombination needs.

    Attributes
    ----------
    work
        What the processes run.
    work_box
        Edge of the grid the network trains and predicts on (``n``, or smaller with
        ``fourier_crop``: :func:`working_box`); outputs go back with :meth:`to_full_grid`.
    halves
        The input half-maps ``[n, n, n]`` (float32), one or two.
    inputs
        The network inputs made from them (with the scale back to the input's).
    voxel_size
        Å per voxel.
    limit_res
        Resolution (Å) of the lowpass and of the recombination (never finer than Nyquist).
    mask
        Soft mask or None.
    fsc3d_computed
        True when the FSC3D was computed here.
    fsc3d_volume
        The FSC3D (centred ``[n, n, n]``), given or computed: the data-consistency weight of a
        single map (:mod:`spIsoNet.engine.consistency`).
    timings
        Stage → seconds spent planning (``fsc3d``, ``prepare``).
    """

    work: WorkSpec
    halves: tuple[np.ndarray, ...]
    inputs: tuple[NetworkInput, ...]
    voxel_size: float
    limit_res: float
    mask: np.ndarray | None
    fsc3d_computed: bool
    fsc3d_volume: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    work_box: int | None = None

    def to_full_grid(self, volume: np.ndarray) -> np.ndarray:
        """Bring a network output from the working grid to the input's ``n``³ grid."""
        box = self.halves[0].shape[0]
        if volume.shape[0] == box:
            return volume
        from spIsoNet.fourier import fourier_resize

        return fourier_resize(volume, box)

    def describe(self, where: str) -> str:
        """One log line: mode, where, models, cubes, batch, epochs, limit, network."""
        s, config = self.work.settings, self.work.config
        mode = "noise2noise" if len(self.work.jobs[0].maps) == 2 else "single-map"
        return (
            f"{mode} on {where}: {len(self.work.jobs)} model(s), {s.n_subvolume} cubes of "
            f"{s.cube_size}³, batch {self.work.batch_size} (acc {s.acc_batches}), {s.epochs} "
            f"epochs, limit {self.limit_res:.2f} Å, net width {config.width} depth "
            f"{config.depth} ({config.norm} norm)"
            + (f", training time limit {s.time_limit:g} s" if s.time_limit is not None else "")
            + self._grid_text()
        )

    def _grid_text(self) -> str:
        box = self.halves[0].shape[0]
        if self.work_box is None or self.work_box == box:
            return ""
        apix = self.voxel_size * box / self.work_box
        return f", working grid {self.work_box}³ of {apix:.2f} Å (Fourier-cropped from {box}³)"


# --------------------------------------------------------------------------------------------
# checks


def _check_volume(name: str, array: np.ndarray | None, shape: tuple[int, ...]) -> None:
    if array is None:
        return
    if array.shape != shape:
        raise InputError(f"{name}: shape {tuple(array.shape)} differs from the half-maps' {shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: contains NaN/Inf values")


def check_inputs(
    half1: np.ndarray,
    half2: np.ndarray | None,
    voxel_size: float,
    *,
    fsc3d_volume: np.ndarray | None,
    mask: np.ndarray | None,
    reference: np.ndarray | None,
    settings: EngineSettings,
    world: int,
    has_pretrained: bool,
    names: Mapping[str, str] | None = None,
) -> None:
    """Check the maps against each other and the settings against the maps (before any work).

    Parameters
    ----------
    half1, half2
        Half-maps ``[n, n, n]`` (``half2`` None: single-map mode).
    voxel_size
        Å per voxel.
    fsc3d_volume, mask, reference
        Optional volumes on the half-maps' grid.
    settings
        Checked with :meth:`EngineSettings.validate` for this box and ``world`` processes.
    world
        Number of processes.
    has_pretrained
        Whether a pretrained model is given (``epochs = 0`` needs one).
    names
        Setting/argument name → the caller's name in messages (``fsc3d_volume``, ``epochs``,
        ``pretrained_model`` ...).

    Raises
    ------
    InputError
        One line naming the map or setting.
    """
    names = names or {}
    if half1.ndim != 3 or len(set(half1.shape)) != 1:
        raise InputError(f"half-map 1: must be a cubic 3D map, got shape {tuple(half1.shape)}")
    shape = tuple(half1.shape)
    fsc_name = names.get("fsc3d_volume", "aniso_file (FSC3D)")
    _check_volume("half-map 1", half1, shape)
    _check_volume("half-map 2", half2, shape)
    _check_volume("mask", mask, shape)
    _check_volume("reference", reference, shape)
    if fsc3d_volume is not None and tuple(fsc3d_volume.shape) != shape:
        raise InputError(
            f"{fsc_name}: FSC3D shape {tuple(fsc3d_volume.shape)} differs from the half-maps' "
            f"{shape}; compute it from these half-maps with spisonet.py fsc3d"
        )
    _check_volume(fsc_name, fsc3d_volume, shape)
    if not voxel_size > 0:
        raise InputError(f"voxel size must be positive, got {voxel_size}")
    settings.validate(box=shape[0], world=world, names=names)
    if settings.epochs == 0 and not has_pretrained:
        raise InputError(
            f"{names.get('epochs', 'epochs')} 0 needs "
            f"{names.get('pretrained_model', 'pretrained_model')} (prediction only)"
        )
    if fsc3d_volume is None and half2 is None:
        raise InputError(
            f"single-map mode needs {names.get('fsc3d_volume', '--aniso_file')} "
            "(an FSC3D needs two half-maps)"
        )


def check_limit_res(
    limit_res: float, box: int, voxel_size: float, names: Mapping[str, str] | None = None
) -> float:
    """Check a resolution limit; return the one used (positive, inside the box, ≤ Nyquist).

    Parameters
    ----------
    limit_res
        Requested limit (Å).
    box
        Map edge (voxels).
    voxel_size
        Å per voxel.
    names
        ``limit_res`` → the caller's name in messages.

    Returns
    -------
    float
        ``limit_res``, or the Nyquist resolution ``2 · voxel_size`` when finer (warned).

    Raises
    ------
    InputError
        Not positive, or so coarse that no Fourier shell lies inside it (``limit_res`` > the box
        edge ``box · voxel_size``: only the zero frequency would be kept).
    """
    name = (names or {}).get("limit_res", "limit_res")
    if not limit_res > 0:
        raise InputError(f"{name} {limit_res:g}: must be positive")
    extent = box * voxel_size
    if extent / limit_res < 1:
        raise InputError(
            f"{name} {limit_res:g} Å is coarser than the box ({extent:.1f} Å): "
            "no Fourier shell inside it"
        )
    nyquist = 2.0 * voxel_size
    if limit_res < nyquist:
        log.warning("%s %g Å is beyond Nyquist (%.3f Å); using Nyquist", name, limit_res, nyquist)
        return nyquist
    return float(limit_res)


# --------------------------------------------------------------------------------------------
# policies


def default_limit_res(
    half1: np.ndarray, half2: np.ndarray | None, voxel_size: float, mask: np.ndarray | None
) -> float:
    """Return the ``limit_res`` used when none is given (Å).

    The global FSC = :data:`DEFAULT_LIMIT_FSC` resolution of the (masked) half-maps; Nyquist
    (no lowpass) in single-map mode. When the FSC3D is computed here, ``compute_fsc3d`` applies
    the same threshold and its limit is used.
    """
    if half2 is None:
        return 2.0 * voxel_size
    from spIsoNet.fourier import fsc_curve, resolution_at

    fsc = fsc_curve(half1, half2, mask=mask)
    res = resolution_at(fsc, half1.shape[0], voxel_size, threshold=DEFAULT_LIMIT_FSC)
    return float(res.angstrom)


#: Fourier shells kept beyond ``limit_res`` on a cropped working grid: room for the raised-cosine
#: edge of the input lowpass (3 shells, spIsoNet.fourier.lowpass) and one shell to spare.
CROP_MARGIN_SHELLS = 4


def working_box(box: int, voxel_size: float, limit_res: float, cube_size: int) -> int:
    """Edge of the Fourier-cropped grid that still holds every frequency up to ``limit_res``.

    The network only supplies frequencies within ``limit_res`` (beyond it the corrected map is
    the input's own data), so it may train and predict on the map resampled to the smallest even
    edge ``m`` whose Nyquist lies :data:`CROP_MARGIN_SHELLS` shells beyond ``limit_res``: voxels
    ``n / m`` times larger, ``(n / m)³`` times fewer, so each training cube covers a larger part
    of the particle and its low frequencies. Never smaller than ``cube_size``, never above ``n``.

    Parameters
    ----------
    box
        Map edge ``n`` (voxels).
    voxel_size
        Å per voxel of the map.
    limit_res
        Finest resolution the network works at (Å).
    cube_size
        Training cube edge (voxels).

    Returns
    -------
    int
        ``m`` (``n`` when cropping would not save anything).
    """
    limit_shell = box * voxel_size / limit_res
    size = 2 * int(np.ceil(limit_shell + CROP_MARGIN_SHELLS))
    size = max(size, cube_size + cube_size % 2)
    return box if size >= box else size


def effective_batch_size(settings: EngineSettings, world: int) -> int:
    """Return the cubes per optimizer step, a multiple of ``world × acc_batches``.

    The setting, or 4 on one process and 2 × processes otherwise, rounded down to a multiple of
    ``world × acc_batches`` (at least one such multiple).
    """
    batch = settings.batch_size or (4 if world == 1 else 2 * world)
    parts = world * settings.acc_batches
    if batch % parts:
        batch = max(1, batch // parts) * parts
    return batch


def network_config(
    settings: EngineSettings,
    pretrained: dict | None,
    *,
    source: str = "pretrained model",
    names: Mapping[str, str] | None = None,
) -> UNetConfig:
    """Return the architecture: the settings', or the pretrained model's (it must fit the cubes).

    Raises
    ------
    InputError
        A pretrained architecture that the cube size does not fit.
    """
    config = UNetConfig(settings.net_width, settings.net_depth, settings.n_conv, settings.norm)
    if pretrained is None:
        return config
    try:
        loaded = UNetConfig(**pretrained["config"])
    except (KeyError, TypeError) as exc:
        raise InputError(f"{source}: no valid network architecture in it ({exc})") from None
    if loaded != config:
        log.info("%s: using the model's architecture %s", source, loaded)
    if settings.cube_size % loaded.multiple:
        cube = (names or {}).get("cube_size", "cube_size")
        raise InputError(
            f"{source}: its network (depth {loaded.depth}) needs {cube} to be a multiple of "
            f"{loaded.multiple}, got {settings.cube_size}"
        )
    return loaded


def prediction_tiling(settings: EngineSettings, config: UNetConfig) -> tuple[int, int]:
    """Prediction tile edge (``predict_crop_size`` rounded up to the grid) and overlap."""
    grid = config.multiple
    tile = -(-settings.predict_crop_size // grid) * grid
    overlap = max(settings.predict_crop_size - settings.cube_size, tile // 4)
    return tile, overlap


def job_names(model_name: str, n_halves: int, independent: bool) -> list[str]:
    """Checkpoint stems of a run: one model, or one per half with ``independent``."""
    if n_halves == 2 and independent:
        return [f"{model_name}_half1", f"{model_name}_half2"]
    return [model_name]


def _jobs(inputs: list[NetworkInput], independent: bool, model_name: str) -> tuple[TrainJob, ...]:
    names = job_names(model_name, len(inputs), independent)
    if len(inputs) == 1:
        return (TrainJob(names[0], (inputs[0].data,), (0,)),)
    if independent:
        return tuple(TrainJob(n, (x.data,), (0,)) for n, x in zip(names, inputs))
    return (TrainJob(names[0], (inputs[0].data, inputs[1].data), (0, 1)),)


# --------------------------------------------------------------------------------------------
# the plan


def make_plan(
    half1: np.ndarray,
    half2: np.ndarray | None,
    voxel_size: float,
    *,
    fsc3d_volume: np.ndarray | None,
    limit_res: float | None,
    mask: np.ndarray | None,
    reference: np.ndarray | None,
    ref_resolution: float,
    settings: EngineSettings,
    config: UNetConfig,
    world: int,
    output_dir: str,
    pretrained: dict | None,
    model_name: str,
    n_threads: int = 1,
    loss_plot: Callable[[dict[str, list[float]]], object] | None = None,
    names: Mapping[str, str] | None = None,
) -> CorrectionPlan:
    """Plan a correction (inputs already checked with :func:`check_inputs`).

    Parameters
    ----------
    half1, half2, voxel_size, fsc3d_volume, limit_res, mask, reference, ref_resolution
        As :func:`spIsoNet.engine.correct_maps` (float32 arrays).
    settings
        Settings with the seed resolved (not None).
    config
        Network architecture (:func:`network_config`).
    world
        Number of processes.
    output_dir
        Folder of the checkpoints.
    pretrained
        Checkpoint state or None.
    model_name
        Checkpoint stem.
    n_threads
        Threads for the FFTs of the FSC3D.
    loss_plot
        See :class:`WorkSpec`.
    names
        Caller's names in messages.

    Returns
    -------
    CorrectionPlan
    """
    if settings.seed is None:
        raise ValueError("make_plan needs settings with a resolved seed")
    timings: dict[str, float] = {}
    box = half1.shape[0]
    if limit_res is not None:
        limit_res = check_limit_res(limit_res, box, voxel_size, names)
    computed = False
    if fsc3d_volume is None:
        from spIsoNet.fsc3d import compute_fsc3d

        with stage_timer(timings, "fsc3d"):
            log.info("no FSC3D given: computing it from the two half-maps (fsc3d)")
            fsc_result = compute_fsc3d(
                half1, half2, voxel_size, mask=mask, limit_res=limit_res, n_threads=n_threads
            )
        fsc3d_volume = np.asarray(fsc_result.volume, dtype=np.float32)
        if limit_res is None:
            limit_res = float(fsc_result.limit_res)
            log.info("--limit_res not given: the FSC3D's limit %.2f Å", limit_res)
        computed = True
    with stage_timer(timings, "prepare"):
        if limit_res is None:
            limit_res = default_limit_res(half1, half2, voxel_size, mask)
            if half2 is not None:
                log.info(
                    "--limit_res not given: global FSC=%g resolution %.2f Å",
                    DEFAULT_LIMIT_FSC,
                    limit_res,
                )
            else:
                log.info("--limit_res not given: no lowpass (Nyquist %.2f Å)", limit_res)
        limit_res = max(float(limit_res), 2.0 * voxel_size)
        halves = (half1,) if half2 is None else (half1, half2)
        if reference is not None:
            from spIsoNet.fourier import combine_maps

            sources = [
                combine_maps(reference, h, ref_resolution, voxel_size, mask=mask) for h in halves
            ]
        else:
            sources = list(halves)
        work_box = box
        if settings.fourier_crop:
            work_box = working_box(box, voxel_size, limit_res, settings.cube_size)
        work_voxel, work_mask = voxel_size * box / work_box, mask
        if work_box < box:
            from spIsoNet.fourier import fourier_resize

            sources = [fourier_resize(h, work_box) for h in sources]
            work_mask = None if mask is None else fourier_resize(mask, work_box)
        inputs = [
            prepare_input(h, work_voxel, limit_res, name=f"half-map {i + 1}")
            for i, h in enumerate(sources)
        ]
        weight = cube_weight(fsc3d_volume, settings.cube_size, grid_size=work_box)
        if reference is not None:
            weight = np.maximum(
                weight, reference_sphere(settings.cube_size, work_voxel, ref_resolution)
            )
        rng = np.random.default_rng([settings.seed, 17])
        corners = sample_cube_starts(
            work_box, settings.cube_size, settings.n_subvolume, work_mask, rng
        )
        tile, overlap = prediction_tiling(settings, config)
        extra = {
            "voxel_size": float(voxel_size),
            "limit_res": float(limit_res),
            "cube_size": int(settings.cube_size),
            "working_voxel_size": float(work_voxel),
            "settings": settings.as_plain(),
        }
        work = WorkSpec(
            jobs=_jobs(inputs, settings.independent, model_name),
            corners=corners,
            weight_rfft=weight_to_rfft(weight),
            settings=settings,
            config=config,
            batch_size=effective_batch_size(settings, world),
            output_dir=str(output_dir),
            pretrained=pretrained,
            extra=extra,
            tile=tile,
            overlap=overlap,
            loss_plot=loss_plot,
            names=dict(names or {}),
        )
    return CorrectionPlan(
        work=work,
        halves=halves,
        inputs=tuple(inputs),
        voxel_size=float(voxel_size),
        limit_res=float(limit_res),
        mask=mask,
        fsc3d_computed=computed,
        fsc3d_volume=fsc3d_volume,
        timings=timings,
        work_box=work_box,
    )
