"""``correct_maps``: the whole correction on arrays, as plan → run → recombine.

This is the engine's public entry point, used by ``spisonet.py reconstruct``, ``spisonet.py demo``
and the RELION plugin. It does no map file I/O: arrays in, arrays out; it writes only the model
checkpoint (``<output_dir>/<model_name>.pt``, every epoch) and the loss figure (``loss_plot``).

Stages: :func:`spIsoNet.engine.plan.make_plan` (checks, FSC3D, limit, weight, cubes, jobs),
:func:`spIsoNet.engine.launch.run_work` (training and prediction in one process, in spawned DDP
processes, or in this process's part of a ``torchrun`` launch) and :func:`recombine`. Under
``torchrun`` (the caller passes ``launch``, see :func:`spIsoNet.engine.device.launcher_env`)
every launched process calls ``correct_maps``; results are returned on global rank 0 only
(``result.rank`` tells which process you are).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from spIsoNet.engine.checkpoint import check_model, check_resumable, load_checkpoint
from spIsoNet.engine.device import LaunchEnv, autocast_dtype, plan_devices
from spIsoNet.engine.launch import process_group, run_work
from spIsoNet.engine.plan import (
    CorrectionPlan,
    check_inputs,
    job_names,
    make_plan,
    network_config,
)
from spIsoNet.engine.plots import LossPlot
from spIsoNet.engine.settings import EngineSettings
from spIsoNet.engine.work import RunOutput
from spIsoNet.log import get_logger
from spIsoNet.timing import stage_timer

log = get_logger("engine")

__all__ = ["CorrectionResult", "EngineSettings", "correct_maps", "recombine"]


@dataclass
class CorrectionResult:
    """What :func:`correct_maps` returns (filled on the main process only).

    Attributes
    ----------
    corrected
        Corrected maps (float32 ``[n, n, n]``, input scale), one per input half: within
        ``limit_res`` the network output where it beats the input's measurement and the input
        where it does not (``keep_measured``), the input half's own data beyond.
    filtered
        Raw network outputs brought back to the input's scale (lowpassed to ``limit_res``).
    model_path
        Checkpoint of the (first) model.
    loss_history
        Mean loss per epoch of the (first) model.
    timings
        Stage → seconds.
    device
        Human-readable description of the device(s).
    model_paths, loss_histories
        All models (two with ``independent``).
    limit_res
        Resolution (Å) used for lowpass and recombination.
    fsc3d_computed
        True when the FSC3D was computed here (no ``fsc3d_volume`` given).
    seed
        Seed actually used.
    rank
        Global rank of this process (results are empty when not 0).
    settings
        The settings the run used: sized for its device, with the seed actually used.
    """

    corrected: list[np.ndarray] = field(default_factory=list)
    filtered: list[np.ndarray] = field(default_factory=list)
    model_path: Path | None = None
    loss_history: list[float] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    device: str = ""
    model_paths: list[Path] = field(default_factory=list)
    loss_histories: dict[str, list[float]] = field(default_factory=dict)
    limit_res: float | None = None
    fsc3d_computed: bool = False
    seed: int | None = None
    rank: int = 0
    settings: EngineSettings | None = None


def _float32(array: np.ndarray | None) -> np.ndarray | None:
    return None if array is None else np.asarray(array, dtype=np.float32)


def _resolve_seed(seed: int | None, ctx) -> int:
    """Return the seed given, or draw one (the same on every process) and log it."""
    if seed is not None:
        return int(seed)
    seed = int(np.random.SeedSequence().entropy % (2**31))
    if ctx is not None:
        seed = ctx.broadcast_int(seed)
    log.info("random seed %d (give --seed %d to repeat this run)", seed, seed)
    return seed


def _warn_other_scale(state: dict, source, voxel_size: float) -> None:
    """Warn when a pretrained model was trained at another voxel size (features at its scale)."""
    trained = state.get("extra", {}).get("voxel_size")
    if trained and abs(float(trained) - voxel_size) > 0.02 * voxel_size:
        log.warning(
            "%s: trained on maps of %.3f Å/voxel, these have %.3f Å/voxel: the network sees "
            "features at another scale",
            source,
            float(trained),
            voxel_size,
        )


def _network(settings, pretrained_model, voxel_size, out_dir, model_name, single, names):
    """Load and check the pretrained checkpoint, choose the architecture, check resumables.

    Returns
    -------
    pretrained : dict or None
        The pretrained checkpoint (None without ``pretrained_model``).
    config : UNetConfig
        The network architecture of this run.
    """
    pretrained = None
    if pretrained_model is not None:
        pretrained = load_checkpoint(pretrained_model)
        check_model(pretrained, pretrained_model)
        _warn_other_scale(pretrained, pretrained_model, voxel_size)
    config = network_config(settings, pretrained, source=str(pretrained_model), names=names)
    if settings.resume:
        for name in job_names(model_name, 1 if single else 2, settings.independent):
            if (out_dir / f"{name}.pt").is_file():
                check_resumable(out_dir / f"{name}.pt", config)
    return pretrained, config


def correct_maps(
    half1: np.ndarray,
    half2: np.ndarray | None,
    voxel_size: float,
    *,
    fsc3d_volume: np.ndarray | None,
    limit_res: float | None,
    mask: np.ndarray | None = None,
    settings: EngineSettings | None = None,
    output_dir: str | os.PathLike = ".",
    pretrained_model: str | os.PathLike | None = None,
    model_name: str = "model",
    reference: np.ndarray | None = None,
    ref_resolution: float = 10.0,
    names: Mapping[str, str] | None = None,
    launch: LaunchEnv | None = None,
    loss_plot: Callable[[dict[str, list[float]]], object] | str | None = "loss.png",
) -> CorrectionResult:
    """Correct preferred-orientation anisotropy of one or two half-maps.

    Parameters
    ----------
    half1, half2
        Half-maps ``[n, n, n]`` (float). ``half2=None``: single-map mode (the network learns from
        ``half1`` alone, without the cross-half terms).
    voxel_size
        Å per voxel.
    fsc3d_volume
        FSC3D ``[n, n, n]`` with zero frequency at ``n // 2`` (``spisonet.py fsc3d``); None:
        computed here from the two halves (requires ``half2``).
    limit_res
        Resolution (Å) to which inputs are lowpassed and beyond which the output takes the input
        half's data. None: the FSC3D's limit, else the global FSC=0.143 resolution
        (:func:`spIsoNet.engine.plan.default_limit_res`). Finer than Nyquist: Nyquist (warned);
        coarser than the box: :class:`InputError`.
    mask
        Soft mask ``[n, n, n]`` in [0, 1]: training cubes are centred inside it; used for spectrum
        matching at recombination. None: whole box.
    settings
        :class:`EngineSettings`.
    output_dir
        Folder for the model checkpoint(s) and the loss figure (created if missing).
    pretrained_model
        Checkpoint to start from (with ``epochs=0``: predict only).
    model_name
        Checkpoint name ``<output_dir>/<model_name>.pt`` (``_half1``/``_half2`` appended with
        ``independent``).
    reference
        Map ``[n, n, n]`` whose frequencies below ``1/ref_resolution`` replace the halves' and are
        declared fully reliable (M = 1 there).
    ref_resolution
        Å, see ``reference``.
    names
        Setting or argument name → the caller's name for it in messages (e.g.
        ``{"cube_size": "--cube_size", "fsc3d_volume": "--aniso_file fsc.mrc"}``).
    launch
        The ``torchrun`` coordinates of this process (None: not launched by torchrun; this
        process runs alone or spawns one process per GPU).
    loss_plot
        Called on the main process after every epoch with ``{model name: loss per epoch}``
        (picklable when processes are spawned, e.g. :class:`spIsoNet.engine.plots.LossPlot`); a
        file name: that figure in ``output_dir`` (default ``loss.png``); None: no figure.

    Returns
    -------
    CorrectionResult

    Raises
    ------
    InputError
        Inconsistent inputs or settings, detected before any training starts.
    """
    settings = replace(settings or EngineSettings())
    timings: dict[str, float] = {}
    with stage_timer(timings, "total"):
        half1, half2 = _float32(half1), _float32(half2)
        mask, reference = _float32(mask), _float32(reference)
        fsc3d_volume = _float32(fsc3d_volume)
        devices = plan_devices(
            settings.device,
            settings.gpu_ids,
            settings.ncpus,
            settings.cpu_processes,
            launched=launch.local_world_size if launch else 1,
        )
        # the network size and cubes the user left open are sized by the device, once, and
        # the precision is resolved once (auto → what this device computes natively)
        settings = settings.sized(devices.kind)
        amp = autocast_dtype(devices.kind, settings.mixed_precision)
        settings = replace(settings, mixed_precision=amp is not None)
        precision = "float32" if amp is None else f"{str(amp).removeprefix('torch.')} autocast"
        world = launch.world_size if launch else devices.n_procs
        check_inputs(
            half1,
            half2,
            voxel_size,
            fsc3d_volume=fsc3d_volume,
            mask=mask,
            reference=reference,
            settings=settings,
            world=world,
            has_pretrained=pretrained_model is not None,
            names=names,
        )
        out_dir = Path(output_dir)
        pretrained, config = _network(
            settings, pretrained_model, voxel_size, out_dir, model_name, half2 is None, names
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(loss_plot, (str, os.PathLike)):
            loss_plot = LossPlot(out_dir / loss_plot)
        with process_group(launch, devices) as ctx:
            settings = replace(settings, seed=_resolve_seed(settings.seed, ctx))
            plan = make_plan(
                half1,
                half2,
                voxel_size,
                fsc3d_volume=fsc3d_volume,
                limit_res=limit_res,
                mask=mask,
                reference=reference,
                ref_resolution=ref_resolution,
                settings=settings,
                config=config,
                world=world,
                output_dir=str(out_dir),
                pretrained=pretrained,
                model_name=model_name,
                n_threads=devices.threads,
                loss_plot=loss_plot,
                names=names,
            )
            timings.update(plan.timings)
            where = devices.describe() if launch is None else f"{world} launched processes"
            where = f"{where}, {precision}"
            log.info("%s", plan.describe(where))
            run = run_work(plan.work, devices, ctx)
            timings.update(run.timings)
            result = CorrectionResult(
                device=where if launch is None else f"{world} processes (torchrun), {precision}",
                limit_res=plan.limit_res,
                fsc3d_computed=plan.fsc3d_computed,
                seed=settings.seed,
                rank=0 if ctx is None else ctx.rank,
                settings=settings,
                timings=timings,
            )
            if ctx is not None and not ctx.is_main:
                return result
            with stage_timer(timings, "recombine"):
                recombine(plan, run, result)
            if result.model_path is None and pretrained_model is not None:
                result.model_path = Path(pretrained_model)
    return result


def recombine(plan: CorrectionPlan, run: RunOutput, result: CorrectionResult) -> None:
    """Fill ``result`` from the processes' output: maps on the input's scale, recombined.

    ``filtered`` is each network output on its input's scale; ``corrected`` keeps it within
    ``plan.limit_res`` and the input half's own data beyond (:func:`spIsoNet.fourier.combine_maps`),
    then (``keep_measured``, default) keeps the input wherever it clearly beats the network's
    output on a Fourier component (:func:`spIsoNet.engine.consistency.keep_measured`).
    """
    predictions = iter(run.predictions)
    for job in plan.work.jobs:
        for _ in job.predict:
            k = len(result.filtered)
            filtered = plan.inputs[k].to_input_scale(plan.to_full_grid(next(predictions)))
            result.filtered.append(filtered)
            result.corrected.append(
                _recombine(filtered, plan.halves[k], plan.limit_res, plan.voxel_size, plan.mask)
            )
    if plan.work.settings.keep_measured:
        _keep_measured(plan, result)
    result.model_paths = [Path(p) for p in run.model_paths if p]
    result.model_path = result.model_paths[0] if result.model_paths else None
    result.loss_histories = dict(run.histories)
    result.loss_history = next(iter(result.loss_histories.values()), [])


def _keep_measured(plan: CorrectionPlan, result: CorrectionResult) -> None:
    """Apply data consistency: keep the input wherever it clearly beats the network."""
    from spIsoNet.engine.consistency import keep_measured

    result.corrected, report = keep_measured(
        list(plan.halves),
        result.corrected,
        plan.voxel_size,
        plan.limit_res,
        mask=plan.mask,
        fsc3d_volume=plan.fsc3d_volume,
        independent=plan.work.settings.independent,
    )
    log.info(
        "data consistency: within %.2f Å the input is kept unchanged in %s of the Fourier "
        "components; the network supplies %s of the band",
        plan.limit_res,
        " / ".join(f"{100 * f:.0f} %" for f in report.kept_fraction),
        " / ".join(f"{100 * f:.0f} %" for f in report.network_fraction),
    )


def _recombine(filtered, original, limit_res, voxel_size, mask) -> np.ndarray:
    """Network output within ``limit_res``, the original half beyond (fourier.combine_maps)."""
    if limit_res <= 2.0 * voxel_size * (1 + 1e-6):
        return filtered.astype(np.float32)
    from spIsoNet.fourier import combine_maps

    return np.asarray(
        combine_maps(filtered, original, limit_res, voxel_size, mask=mask), dtype=np.float32
    )
