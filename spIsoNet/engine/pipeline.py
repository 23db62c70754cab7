"""``correct_maps``: the whole correction (prepare → train → predict → recombine) on arrays.

This is the engine's public entry point, used by ``spisonet.py reconstruct``, ``spisonet.py demo``
and the RELION plugin. It does no map file I/O: arrays in, arrays out; it writes only the model
checkpoint (``<output_dir>/<model_name>.pt``, every epoch) and ``<output_dir>/loss.png``.

Processes. One process on CPU or on one GPU; one spawned process per GPU when several GPUs are
selected (DDP, rendezvous through a private file store); under ``torchrun`` (``RANK``,
``WORLD_SIZE``... set) every launched process calls ``correct_maps`` and takes its part — the
results are returned on global rank 0 only (``result.rank`` tells which process you are).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from spIsoNet.engine import distributed
from spIsoNet.engine.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint
from spIsoNet.engine.data import CubeSource, NetworkInput, prepare_input, sample_cube_starts
from spIsoNet.engine.device import DevicePlan, LaunchEnv, launcher_env, plan_devices
from spIsoNet.engine.fourier_weight import cube_weight, reference_sphere, weight_to_rfft
from spIsoNet.engine.plots import plot_losses
from spIsoNet.engine.predict import predict_volume
from spIsoNet.engine.settings import EngineSettings
from spIsoNet.engine.train import TrainOptions, make_optimizer, micro_batch_size, train_model
from spIsoNet.engine.unet import UNet3D, UNetConfig
from spIsoNet.errors import InputError
from spIsoNet.log import get_logger

log = get_logger("engine")

__all__ = ["CorrectionResult", "EngineSettings", "correct_maps"]


@dataclass
class CorrectionResult:
    """What :func:`correct_maps` returns (filled on the main process only).

    Attributes
    ----------
    corrected
        Corrected maps (float32 ``[n, n, n]``, input scale), one per input half: network output
        within ``limit_res``, the input half's own data beyond.
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


@dataclass
class _Job:
    """One model to train: its name, its training maps and which of them to predict."""

    name: str
    maps: list[np.ndarray]
    predict: list[int]


@dataclass
class _Payload:
    """Everything a (possibly spawned) process needs to train and predict; picklable."""

    jobs: list[_Job]
    corners: np.ndarray
    weight_rfft: np.ndarray
    settings: EngineSettings
    config: dict
    batch_size: int
    output_dir: str
    pretrained: dict | None
    extra: dict
    tile: int
    overlap: int


# --------------------------------------------------------------------------------------------
# validation


def _check_volume(name: str, array: np.ndarray | None, shape: tuple[int, ...]) -> None:
    if array is None:
        return
    if array.shape != shape:
        raise InputError(f"{name}: shape {tuple(array.shape)} differs from the half-maps' {shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: contains NaN/Inf values")


def _validate(
    half1, half2, voxel_size, fsc3d_volume, mask, reference, settings, world, names
) -> None:
    if half1.ndim != 3 or len(set(half1.shape)) != 1:
        raise InputError(f"half-map 1: must be a cubic 3D map, got shape {tuple(half1.shape)}")
    shape = tuple(half1.shape)
    _check_volume("half-map 1", half1, shape)
    _check_volume("half-map 2", half2, shape)
    _check_volume("mask", mask, shape)
    _check_volume("reference", reference, shape)
    if fsc3d_volume is not None and tuple(fsc3d_volume.shape) != shape:
        raise InputError(
            f"aniso_file (FSC3D): shape {tuple(fsc3d_volume.shape)} differs from the half-maps' "
            f"{shape}; compute it from these half-maps with spisonet.py fsc3d"
        )
    _check_volume("aniso_file (FSC3D)", fsc3d_volume, shape)
    if not voxel_size > 0:
        raise InputError(f"voxel size must be positive, got {voxel_size}")
    settings.validate(box=shape[0], world=world, names=names)


def _default_limit_res(half1, half2, voxel_size, mask) -> float:
    from spIsoNet.fourier import fsc_curve, resolution_at

    fsc = fsc_curve(half1, half2, mask=mask)
    res = resolution_at(fsc, half1.shape[0], voxel_size, threshold=0.143)
    return float(res.angstrom)


# --------------------------------------------------------------------------------------------
# the work of one process


def _run_jobs(payload: _Payload, ctx: distributed.DistContext) -> dict:
    """Train (unless epochs == 0) and predict every job; returns predictions on the main rank."""
    s = payload.settings
    out_dir = Path(payload.output_dir)
    histories: dict[str, list[float]] = {}
    predictions: list[np.ndarray | None] = []
    model_paths: list[str] = []
    timings = {"train": 0.0, "predict": 0.0}
    config = UNetConfig(**payload.config)
    weight = torch.from_numpy(payload.weight_rfft).to(ctx.device)
    micro_batch_size(payload.batch_size, ctx.world_size, s.acc_batches)  # fail early
    for job_index, job in enumerate(payload.jobs):
        model_path = out_dir / f"{job.name}.pt"
        torch.manual_seed(int(s.seed) + 1000 * job_index)
        if payload.pretrained is not None:
            net = build_from_checkpoint(payload.pretrained)
            history = list(payload.pretrained.get("loss_history", []))
        else:
            net = UNet3D(config)
            history = []
        net.to(ctx.device)
        optimizer = make_optimizer(net, s.learning_rate)
        start_epoch = 0
        if s.resume and model_path.is_file():
            state = load_checkpoint(model_path)
            net.load_state_dict(state["model_state"])
            if state.get("optimizer_state"):
                optimizer.load_state_dict(state["optimizer_state"])
            start_epoch = int(state["epoch"])
            history = list(state["loss_history"])
            if ctx.is_main:
                log.info("resuming %s after epoch %d", model_path, start_epoch)
        started = time.perf_counter()
        if s.epochs > start_epoch:
            maps = [torch.from_numpy(np.ascontiguousarray(m)).to(ctx.device) for m in job.maps]
            source = CubeSource(maps, payload.corners, s.cube_size)
            trained = torch.compile(net) if s.compile else net

            def on_epoch_end(epoch, hist, _net, opt, _name=job.name, _path=model_path, _model=net):
                save_checkpoint(
                    _path,
                    _model,
                    optimizer=opt,
                    epoch=epoch + 1,
                    loss_history=hist,
                    extra=payload.extra,
                )
                histories[_name] = hist
                plot_losses(out_dir / "loss.png", histories)

            options = TrainOptions(
                epochs=s.epochs,
                batch_size=payload.batch_size,
                acc_batches=s.acc_batches,
                steps_per_epoch=max(1, s.n_subvolume // payload.batch_size),
                learning_rate=s.learning_rate,
                alpha=s.alpha,
                beta=s.beta if len(job.maps) > 1 else 0.0,
                seed=int(s.seed) + 1000 * job_index,
                mixed_precision=s.mixed_precision,
                show_progress=s.show_progress,
                description=job.name,
            )
            history = train_model(
                trained,
                source,
                weight,
                options,
                ctx,
                optimizer=optimizer,
                start_epoch=start_epoch,
                history=history,
                on_epoch_end=on_epoch_end,
            )
            del maps, source
            model_paths.append(str(model_path))
        else:
            model_paths.append(str(model_path) if model_path.is_file() else "")
        histories[job.name] = history
        timings["train"] += time.perf_counter() - started
        started = time.perf_counter()
        tile_batch = s.predict_batch_size or (4 if ctx.device.type == "cuda" else 1)
        for index in job.predict:
            predictions.append(
                predict_volume(
                    net,
                    job.maps[index],
                    tile=payload.tile,
                    overlap=payload.overlap,
                    batch_size=tile_batch,
                    ctx=ctx,
                    mixed_precision=s.mixed_precision,
                    show_progress=s.show_progress,
                )
            )
        timings["predict"] += time.perf_counter() - started
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    # All ranks meet here before any of them can tear the process group down (spawned or
    # torchrun): gloo's reduce of the prediction may return on a sender before the main rank has
    # received everything, and a rank that destroys the group early makes its peer abort.
    ctx.barrier()
    return {
        "predictions": predictions,
        "histories": histories,
        "model_paths": model_paths,
        "timings": timings,
    }


def _spawn_entry(rank, world, store, plan, payload, shared, summary_path, log_level):
    """Body of each spawned process (module level so that it can be pickled)."""
    from spIsoNet.log import setup_logging

    setup_logging(log_level if rank == 0 else max(log_level, 30))
    ctx = distributed.join_spawned(rank, world, store, plan)
    try:
        result = _run_jobs(payload, ctx)
        if ctx.is_main:
            for target, volume in zip(shared, result["predictions"]):
                target.copy_(torch.from_numpy(volume))
            summary = {k: result[k] for k in ("histories", "model_paths", "timings")}
            Path(summary_path).write_text(json.dumps(summary))
    finally:
        distributed.leave(ctx)


def _run_spawned(payload: _Payload, plan: DevicePlan) -> dict:
    import torch.multiprocessing as mp

    n = payload.jobs[0].maps[0].shape[0]
    count = sum(len(job.predict) for job in payload.jobs)
    shared = [torch.zeros((n, n, n), dtype=torch.float32).share_memory_() for _ in range(count)]
    with tempfile.TemporaryDirectory(prefix="spisonet_ddp_") as tmp:
        store = os.path.join(tmp, "rendezvous")
        summary_path = os.path.join(tmp, "summary.json")
        mp.spawn(
            _spawn_entry,
            args=(
                plan.n_procs,
                store,
                plan,
                payload,
                shared,
                summary_path,
                log.getEffectiveLevel(),
            ),
            nprocs=plan.n_procs,
            join=True,
        )
        summary = json.loads(Path(summary_path).read_text())
    summary["predictions"] = [t.numpy() for t in shared]
    return summary


# --------------------------------------------------------------------------------------------
# public entry point


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
        half's data. None: the FSC3D's limit, else the global FSC=0.143 resolution.
    mask
        Soft mask ``[n, n, n]`` in [0, 1]: training cubes are centred inside it; used for spectrum
        matching at recombination. None: whole box.
    settings
        :class:`EngineSettings`.
    output_dir
        Folder for the model checkpoint(s) and ``loss.png`` (created if missing).
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
    t0 = time.perf_counter()
    half1 = np.asarray(half1, dtype=np.float32)
    half2 = None if half2 is None else np.asarray(half2, dtype=np.float32)
    mask = None if mask is None else np.asarray(mask, dtype=np.float32)
    reference = None if reference is None else np.asarray(reference, dtype=np.float32)
    fsc3d_volume = None if fsc3d_volume is None else np.asarray(fsc3d_volume, dtype=np.float32)
    launch: LaunchEnv | None = launcher_env()
    plan = plan_devices(settings.device, settings.gpu_ids, settings.ncpus, settings.cpu_processes)
    world = launch.world_size if launch else plan.n_procs
    if launch is not None and plan.kind == "cpu":
        # several launched processes share this node's cores
        plan = replace(plan, threads=max(1, plan.threads // launch.local_world_size))
    _validate(half1, half2, voxel_size, fsc3d_volume, mask, reference, settings, world, names)
    if settings.epochs == 0 and pretrained_model is None:
        raise InputError("--epochs 0 needs --pretrained_model (prediction only)")
    if fsc3d_volume is None and half2 is None:
        raise InputError("single-map mode needs --aniso_file (an FSC3D needs two half-maps)")
    batch_size = settings.batch_size or (4 if world == 1 else 2 * world)
    if batch_size % (world * settings.acc_batches):
        batch_size = (
            max(1, batch_size // (world * settings.acc_batches)) * world * settings.acc_batches
        )
    micro_batch_size(batch_size, world, settings.acc_batches)
    pretrained = load_checkpoint(pretrained_model) if pretrained_model is not None else None
    config = UNetConfig(settings.net_width, settings.net_depth, settings.n_conv, settings.norm)
    if pretrained is not None:
        loaded = UNetConfig(**pretrained["config"])
        if loaded != config:
            log.info("using the pretrained model's architecture %s", loaded)
        config = loaded
        if settings.cube_size % config.multiple:
            raise InputError(
                f"--cube_size {settings.cube_size} must be a multiple of {config.multiple} "
                "for the pretrained model"
            )
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    ctx = None
    old_threads = torch.get_num_threads()
    if launch is not None:
        ctx = distributed.join_launcher(launch, plan)
    try:
        seed = settings.seed
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**31))
            if ctx is not None:
                seed = ctx.broadcast_int(seed)
            log.info("random seed %d (give --seed %d to repeat this run)", seed, seed)
        settings.seed = seed
        computed = False
        if fsc3d_volume is None:
            started = time.perf_counter()
            from spIsoNet.fsc3d import compute_fsc3d

            log.info("no FSC3D given: computing it from the two half-maps (fsc3d)")
            fsc_result = compute_fsc3d(
                half1, half2, voxel_size, mask=mask, limit_res=limit_res, n_threads=plan.threads
            )
            fsc3d_volume = np.asarray(fsc_result.volume, dtype=np.float32)
            if limit_res is None:
                limit_res = float(fsc_result.limit_res)
            computed = True
            timings["fsc3d"] = time.perf_counter() - started
        started = time.perf_counter()
        if limit_res is None:
            if half2 is not None:
                limit_res = _default_limit_res(half1, half2, voxel_size, mask)
                log.info("--limit_res not given: global FSC=0.143 resolution %.2f Å", limit_res)
            else:
                limit_res = 2.0 * voxel_size
                log.info("--limit_res not given: no lowpass (Nyquist %.2f Å)", limit_res)
        if not limit_res > 0:
            raise InputError(f"--limit_res must be positive, got {limit_res}")
        limit_res = max(float(limit_res), 2.0 * voxel_size)

        halves = [half1] if half2 is None else [half1, half2]
        from spIsoNet.fourier import combine_maps

        sources = (
            [combine_maps(reference, h, ref_resolution, voxel_size, mask=mask) for h in halves]
            if reference is not None
            else halves
        )
        inputs: list[NetworkInput] = [
            prepare_input(h, voxel_size, limit_res, name=f"half-map {i + 1}")
            for i, h in enumerate(sources)
        ]
        weight = cube_weight(fsc3d_volume, settings.cube_size)
        if reference is not None:
            weight = np.maximum(
                weight, reference_sphere(settings.cube_size, voxel_size, ref_resolution)
            )
        rng = np.random.default_rng([seed, 17])
        corners = sample_cube_starts(
            half1.shape[0], settings.cube_size, settings.n_subvolume, mask, rng
        )
        if half2 is None:
            jobs = [_Job(model_name, [inputs[0].data], [0])]
        elif settings.independent:
            jobs = [
                _Job(f"{model_name}_half1", [inputs[0].data], [0]),
                _Job(f"{model_name}_half2", [inputs[1].data], [0]),
            ]
        else:
            jobs = [_Job(model_name, [inputs[0].data, inputs[1].data], [0, 1])]
        grid = config.multiple
        tile = -(-settings.predict_crop_size // grid) * grid
        overlap = settings.predict_crop_size - settings.cube_size
        if overlap < tile // 4:
            overlap = tile // 4
        extra = {
            "voxel_size": float(voxel_size),
            "limit_res": float(limit_res),
            "cube_size": int(settings.cube_size),
            "settings": {
                k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
                for k, v in asdict(settings).items()
            },
        }
        payload = _Payload(
            jobs=jobs,
            corners=corners,
            weight_rfft=weight_to_rfft(weight),
            settings=settings,
            config=config.as_dict(),
            batch_size=batch_size,
            output_dir=str(out_dir),
            pretrained=pretrained,
            extra=extra,
            tile=tile,
            overlap=overlap,
        )
        timings["prepare"] = time.perf_counter() - started
        log.info(
            "%s on %s: %d model(s), %d cubes of %d³, batch %d (acc %d), %d epochs, "
            "limit %.2f Å, net width %d depth %d (%s norm)",
            "noise2noise" if len(jobs[0].maps) == 2 else "single-map",
            plan.describe() if launch is None else f"{launch.world_size} launched processes",
            len(jobs),
            settings.n_subvolume,
            settings.cube_size,
            batch_size,
            settings.acc_batches,
            settings.epochs,
            limit_res,
            config.width,
            config.depth,
            config.norm,
        )
        if ctx is not None:
            run = _run_jobs(payload, ctx)
        elif plan.n_procs > 1:
            run = _run_spawned(payload, plan)
        else:
            ctx_single = distributed.single_process(plan)
            run = _run_jobs(payload, ctx_single)
        timings.update(run["timings"])
        result = CorrectionResult(
            device=plan.describe()
            if launch is None
            else f"{launch.world_size} processes (torchrun)",
            limit_res=float(limit_res),
            fsc3d_computed=computed,
            seed=seed,
            rank=0 if ctx is None else ctx.rank,
        )
        if ctx is not None and not ctx.is_main:
            return result
        started = time.perf_counter()
        predictions = iter(run["predictions"])
        for job in jobs:
            for _ in job.predict:
                k = len(result.filtered)
                filtered = inputs[k].to_input_scale(next(predictions))
                result.filtered.append(filtered)
                result.corrected.append(
                    _recombine(filtered, halves[k], limit_res, voxel_size, mask)
                )
        timings["recombine"] = time.perf_counter() - started
        result.model_paths = [Path(p) for p in run["model_paths"] if p]
        result.model_path = (
            result.model_paths[0]
            if result.model_paths
            else (Path(pretrained_model) if pretrained_model is not None else None)
        )
        result.loss_histories = dict(run["histories"])
        result.loss_history = next(iter(result.loss_histories.values()), [])
        timings["total"] = time.perf_counter() - t0
        result.timings = timings
        return result
    finally:
        torch.set_num_threads(old_threads)
        if ctx is not None:
            distributed.leave(ctx)


def _recombine(filtered, original, limit_res, voxel_size, mask) -> np.ndarray:
    """Network output within ``limit_res``, the original half beyond (fourier.combine_maps)."""
    if limit_res <= 2.0 * voxel_size * (1 + 1e-6):
        return filtered.astype(np.float32)
    from spIsoNet.fourier import combine_maps

    return np.asarray(
        combine_maps(filtered, original, limit_res, voxel_size, mask=mask), dtype=np.float32
    )
