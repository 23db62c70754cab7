"""The work of one process: train every planned model (unless predicting only) and predict.

:func:`run_jobs` is the same in every process mode (:mod:`spIsoNet.engine.launch`): alone, as
one of several spawned processes, or under ``torchrun``; ``ctx`` says which part is its own.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from spIsoNet.engine import distributed
from spIsoNet.engine.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint
from spIsoNet.engine.data import CubeSource
from spIsoNet.engine.plan import TrainJob, WorkSpec
from spIsoNet.engine.predict import predict_volume
from spIsoNet.engine.train import TrainOptions, make_optimizer, micro_batch_size, train_model
from spIsoNet.engine.unet import UNet3D
from spIsoNet.errors import InputError
from spIsoNet.log import get_logger
from spIsoNet.timing import stage_timer

log = get_logger("engine")

__all__ = ["RunOutput", "run_jobs"]


@dataclass
class RunOutput:
    """What the processes hand back to the main one.

    Attributes
    ----------
    predictions
        Network outputs ``[n, n, n]`` (network units), in job order then ``job.predict`` order;
        empty on processes other than the main one.
    histories
        Model name → mean loss per epoch.
    model_paths
        Checkpoint of each job (``""`` when none was written: predict only).
    timings
        ``train`` and ``predict`` seconds.
    """

    predictions: list[np.ndarray] = field(default_factory=list)
    histories: dict[str, list[float]] = field(default_factory=dict)
    model_paths: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """Everything but the predictions, as plain data (JSON)."""
        return {
            "histories": self.histories,
            "model_paths": self.model_paths,
            "timings": self.timings,
        }


#: messages by which torch and numpy report an allocation failure
_OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "bad_alloc")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (CUDA or CPU, torch or numpy)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MARKERS)


@contextlib.contextmanager
def memory_guard(stage: str, job: str, ctx: distributed.DistContext, work: WorkSpec):
    """Turn an allocation failure inside the block into one :class:`InputError` line with advice."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        if not is_out_of_memory(exc):
            raise
        names = work.names
        training = stage == "training"
        flags = ["cube_size", "batch_size", "net_width"] if training else ["predict_crop_size"]
        advice = ", ".join(names.get(f, f) for f in flags)
        more = names.get("acc_batches", "acc_batches")
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        where = str(ctx.device)
        raise InputError(
            f"out of memory during {stage} of {job} on {where} ({first}): use a smaller {advice}"
            + (f" or a larger {more}" if training else "")
        ) from None


def _start_network(work: WorkSpec, job: TrainJob, ctx: distributed.DistContext, model_path):
    """Network, optimizer, first epoch and loss history of a job (fresh, pretrained, resumed)."""
    if work.pretrained is not None:
        net = build_from_checkpoint(work.pretrained)
        history = list(work.pretrained.get("loss_history", []))
    else:
        net = UNet3D(work.config)
        history = []
    net.to(ctx.device)
    optimizer = make_optimizer(net, work.settings.learning_rate)
    start_epoch = 0
    if work.settings.resume and model_path.is_file():
        state = load_checkpoint(model_path)
        net.load_state_dict(state["model_state"])
        if state.get("optimizer_state"):
            optimizer.load_state_dict(state["optimizer_state"])
        start_epoch = int(state["epoch"])
        history = list(state["loss_history"])
        if ctx.is_main:
            log.info("resuming %s after epoch %d", model_path, start_epoch)
    return net, optimizer, start_epoch, history


def _train(
    work, job, job_index, ctx, weight, net, optimizer, start_epoch, history, histories, time_limit
):
    s = work.settings
    out_dir = Path(work.output_dir)
    model_path = out_dir / f"{job.name}.pt"
    maps = [torch.from_numpy(np.ascontiguousarray(m)).to(ctx.device) for m in job.maps]
    source = CubeSource(maps, work.corners, s.cube_size)
    trained = torch.compile(net) if s.compile else net

    def on_epoch_end(epoch, hist, _net, opt):
        save_checkpoint(
            model_path, net, optimizer=opt, epoch=epoch + 1, loss_history=hist, extra=work.extra
        )
        histories[job.name] = hist
        if work.loss_plot is not None:
            work.loss_plot(histories)

    options = TrainOptions(
        epochs=s.epochs,
        batch_size=work.batch_size,
        acc_batches=s.acc_batches,
        steps_per_epoch=max(1, s.n_subvolume // work.batch_size),
        learning_rate=s.learning_rate,
        alpha=s.alpha,
        beta=s.beta if len(job.maps) > 1 else 0.0,
        seed=int(s.seed) + 1000 * job_index,
        mixed_precision=s.mixed_precision,
        show_progress=s.show_progress,
        description=job.name,
        time_limit=time_limit,
        lr_schedule=s.lr_schedule,
    )
    return train_model(
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


def _time_share(limit: float | None, used: float, jobs_left: int) -> float | None:
    """Training seconds of the next job: what is left of the run's limit, shared evenly."""
    if limit is None:
        return None
    return max(0.0, limit - used) / max(1, jobs_left)


def run_jobs(work: WorkSpec, ctx: distributed.DistContext) -> RunOutput:
    """Train (unless ``epochs`` is reached already) and predict every job of ``work``.

    Parameters
    ----------
    work
        The planned work (:func:`spIsoNet.engine.plan.make_plan`).
    ctx
        This process's device and place among the processes.

    Returns
    -------
    RunOutput
        Predictions on the main process; histories, checkpoints and timings on every process.
    """
    s = work.settings
    out = RunOutput(timings={"train": 0.0, "predict": 0.0})
    weight = torch.from_numpy(work.weight_rfft).to(ctx.device)
    micro_batch_size(work.batch_size, ctx.world_size, s.acc_batches)  # fail early
    tile_batch = s.predict_batch_size or (4 if ctx.device.type == "cuda" else 1)
    for job_index, job in enumerate(work.jobs):
        model_path = Path(work.output_dir) / f"{job.name}.pt"
        torch.manual_seed(int(s.seed) + 1000 * job_index)
        net, optimizer, start_epoch, history = _start_network(work, job, ctx, model_path)
        with stage_timer(out.timings, "train"), memory_guard("training", job.name, ctx, work):
            if s.epochs > start_epoch:
                history = _train(
                    work,
                    job,
                    job_index,
                    ctx,
                    weight,
                    net,
                    optimizer,
                    start_epoch,
                    history,
                    out.histories,
                    _time_share(s.time_limit, out.timings["train"], len(work.jobs) - job_index),
                )
                out.model_paths.append(str(model_path))
            else:
                out.model_paths.append(str(model_path) if model_path.is_file() else "")
            out.histories[job.name] = history
        with stage_timer(out.timings, "predict"), memory_guard("prediction", job.name, ctx, work):
            for index in job.predict:
                predicted = predict_volume(
                    net,
                    job.maps[index],
                    tile=work.tile,
                    overlap=work.overlap,
                    batch_size=tile_batch,
                    ctx=ctx,
                    mixed_precision=s.mixed_precision,
                    show_progress=s.show_progress,
                )
                if predicted is not None:
                    out.predictions.append(predicted)
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    # All ranks meet here before any of them can tear the process group down (spawned or
    # torchrun): gloo's reduce of the prediction may return on a sender before the main rank has
    # received everything, and a rank that destroys the group early makes its peer abort.
    ctx.barrier()
    return out
