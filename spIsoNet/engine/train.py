"""The training loop: AdamW, exact gradient accumulation, DDP, AMP on CUDA, per-epoch callback.

Batch semantics. One optimizer step consumes ``batch_size`` samples planned by
:func:`spIsoNet.engine.data.make_step_plan`. They are split into ``acc_batches`` micro-batches
on each of ``world_size`` processes (``micro = batch_size / (world_size · acc_batches)``). Each
micro-batch loss (a mean over its samples) is scaled by ``1 / acc_batches`` before ``backward``;
DDP averages over processes. The applied gradient is therefore exactly that of the mean loss over
the full batch, whatever the split (the published tool's accumulation bug — gradients reset
before every micro-batch — cannot happen: gradients are reset once per step, before the first
micro-batch).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spIsoNet.engine import interrupt
from spIsoNet.engine.data import CubeSource, make_step_plan, micro_slice
from spIsoNet.engine.device import autocast_dtype
from spIsoNet.engine.distributed import DistContext, maybe_no_sync
from spIsoNet.engine.losses import LossModule
from spIsoNet.engine.settings import split_batch
from spIsoNet.log import get_logger

log = get_logger("engine")


@dataclass
class TrainOptions:
    """Optimisation settings of one training run (see EngineSettings for the user-facing ones).

    ``time_limit``: seconds this call may train (None: no limit); training stops after the
    optimizer step that exceeds it, and that partial epoch counts as done (its mean loss is
    recorded and the checkpoint callback runs). ``progress_interval``: seconds between progress
    log lines (step, loss, time per step, ETA) on the main process.
    """

    epochs: int
    batch_size: int
    acc_batches: int
    steps_per_epoch: int
    learning_rate: float = 3e-4
    alpha: float = 1.0
    beta: float = 0.5
    seed: int = 0
    mixed_precision: bool | None = False
    show_progress: bool = True
    description: str = "training"
    time_limit: float | None = None
    progress_interval: float = 30.0
    lr_schedule: str = "constant"


def micro_batch_size(batch_size: int, world_size: int, acc_batches: int) -> int:
    """Per-process micro-batch; raises :class:`InputError` if the batch cannot be split.

    See :func:`spIsoNet.engine.settings.split_batch` (the one home of this rule).
    """
    return split_batch(batch_size, world_size, acc_batches)


def make_optimizer(net: nn.Module, learning_rate: float) -> torch.optim.Optimizer:
    """AdamW with PyTorch defaults (betas 0.9/0.999, weight decay 0.01), constant learning rate."""
    return torch.optim.AdamW(net.parameters(), lr=learning_rate)


#: fraction of the planned steps spent warming up, and the floor the cosine decays to
_WARMUP_FRACTION, _FINAL_FRACTION = 0.05, 0.1


def learning_rate_at(step: int, total_steps: int, peak: float, schedule: str) -> float:
    """Learning rate of optimizer step ``step`` (0-based) of ``total_steps`` planned steps.

    ``constant``: ``peak`` throughout (the published tool's behaviour). ``cosine``: a linear
    warm-up over the first 5 % of the planned steps (at least one), then a cosine decay from
    ``peak`` to 10 % of it at the last planned step. The rate is a function of the step alone,
    so a resumed run continues the same curve; a run stopped early by a time limit simply
    ends higher on it.
    """
    if schedule == "constant" or total_steps <= 1:
        return peak
    warmup = max(1, int(round(_WARMUP_FRACTION * total_steps)))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - 1 - warmup))
    floor = _FINAL_FRACTION * peak
    return floor + (peak - floor) * 0.5 * (1.0 + np.cos(np.pi * progress))


def _no_buffer_sync(ddp_class) -> dict:
    """DDP keyword that keeps buffers rank-local in forward passes (renamed in newer torch).

    Buffers (BatchNorm running statistics) are equal at the start on every rank, so syncing
    them once at construction, as ``forward_sync_buffers=False`` does, changes nothing.
    """
    import inspect

    if "forward_sync_buffers" in inspect.signature(ddp_class.__init__).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def _amp(ctx: DistContext, enabled: bool | None):
    dtype = autocast_dtype(ctx.device.type, enabled)
    if dtype is None:
        return None, None
    # float16 needs loss scaling against underflowing gradients; bfloat16 has float32's range.
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return dtype, scaler


def train_model(
    net: nn.Module,
    source: CubeSource,
    weight_rfft: torch.Tensor,
    options: TrainOptions,
    ctx: DistContext,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    start_epoch: int = 0,
    history: list[float] | None = None,
    on_epoch_end: Callable[[int, list[float], nn.Module, torch.optim.Optimizer], None]
    | None = None,
) -> list[float]:
    """Train ``net`` in place for epochs ``start_epoch .. options.epochs - 1``.

    Parameters
    ----------
    net
        :class:`~spIsoNet.engine.unet.UNet3D` on ``ctx.device``.
    source
        Training cubes (maps on ``ctx.device``).
    weight_rfft
        Fourier weight M (rfft layout) on ``ctx.device``.
    options
        Batch, accumulation, learning rate, loss weights, seed, AMP.
    ctx
        Process/device context; with ``ctx.world_size > 1`` the net is wrapped in DDP.
    optimizer
        Optimizer to continue with (resume); a new AdamW if None.
    start_epoch, history
        Resume point and the loss history so far.
    on_epoch_end
        Called on the main process after every epoch with ``(epoch, history, net, optimizer)``
        (checkpoint, loss plot).

    Returns
    -------
    list of float
        Mean loss per sample for every epoch (all processes agree).
    """
    history = list(history or [])
    micro = micro_batch_size(options.batch_size, ctx.world_size, options.acc_batches)
    optimizer = optimizer or make_optimizer(net, options.learning_rate)
    module: nn.Module = LossModule(net, weight_rfft, options.alpha, options.beta)
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if ctx.device.type == "cuda" and getattr(net.config, "norm", "") == "batch":
            module.net = nn.SyncBatchNorm.convert_sync_batchnorm(module.net)
        module = DDP(
            module,
            device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            **_no_buffer_sync(DDP),
        )
    amp_dtype, scaler = _amp(ctx, options.mixed_precision)
    progress = None
    if ctx.is_main and options.show_progress:
        from tqdm import tqdm

        progress = tqdm
    clock = _Progress(options, start_epoch)
    net.train()
    for epoch in range(start_epoch, options.epochs):
        plan = make_step_plan(
            len(source), options.batch_size, options.steps_per_epoch, options.seed, epoch
        )
        loss_sum = torch.zeros(2, dtype=torch.float64, device=ctx.device)
        steps = range(plan.steps)
        bar = None
        if progress is not None:
            bar = progress(
                steps,
                desc=f"{options.description} epoch {epoch + 1}/{options.epochs}",
                unit="step",
                leave=False,
                dynamic_ncols=True,
            )
            steps = bar
        stop = False
        for step in steps:
            if options.lr_schedule != "constant":  # constant: the optimizer's own rate
                rate = learning_rate_at(
                    epoch * options.steps_per_epoch + step,
                    options.epochs * options.steps_per_epoch,
                    options.learning_rate,
                    options.lr_schedule,
                )
                for group in optimizer.param_groups:
                    group["lr"] = rate
            optimizer.zero_grad(set_to_none=True)
            for index in range(options.acc_batches):
                interrupt.check()
                part = micro_slice(options.batch_size, micro, ctx.world_size, ctx.rank, index)
                cubes = plan.cubes[step, part]
                x1, x2 = source.batch(cubes, plan.swap[step, part])
                rotations = [int(r) for r in plan.rotations[step, part]]
                last = index == options.acc_batches - 1
                with maybe_no_sync(module, skip=not last):
                    autocast = (
                        torch.autocast(ctx.device.type, dtype=amp_dtype)
                        if amp_dtype is not None
                        else contextlib.nullcontext()
                    )
                    with autocast:
                        loss, _ = module(x1, x2, rotations)
                    scaled = loss / options.acc_batches
                    if scaler is not None:
                        scaler.scale(scaled).backward()
                    else:
                        scaled.backward()
                loss_sum[0] += loss.detach().double() * micro
                loss_sum[1] += micro
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if bar is not None:
                bar.set_postfix(loss=f"{float(loss_sum[0] / loss_sum[1]):.4f}", refresh=False)
            if ctx.is_main:
                clock.step_done(epoch, step, plan.steps, loss_sum)
            if options.time_limit is not None:
                stop = ctx.broadcast_int(int(clock.elapsed() >= options.time_limit)) == 1
                if stop:
                    break
        if bar is not None:
            bar.close()
        ctx.all_reduce_sum(loss_sum)
        mean_loss = float(loss_sum[0] / loss_sum[1])
        if not np.isfinite(mean_loss):
            raise RuntimeError(f"training diverged at epoch {epoch + 1} (loss {mean_loss})")
        history.append(mean_loss)
        if ctx.is_main:
            log.info(
                "%s: epoch %d/%d loss %.5f",
                options.description,
                epoch + 1,
                options.epochs,
                mean_loss,
            )
            if on_epoch_end is not None:
                on_epoch_end(epoch, history, net, optimizer)
        if stop:
            if ctx.is_main:
                log.info(
                    "%s: time limit of %g s reached after step %d/%d of epoch %d: training "
                    "stops here (that epoch counts as done)",
                    options.description,
                    options.time_limit,
                    step + 1,
                    plan.steps,
                    epoch + 1,
                )
            break
    if ctx.is_main:
        clock.summary()
    net.eval()
    return history


class _Progress:
    """Progress log lines of the main process, at most one per ``progress_interval`` seconds."""

    def __init__(self, options: TrainOptions, start_epoch: int) -> None:
        self.options = options
        self.started = time.monotonic()
        self.last = self.started
        self.done = 0
        self.total = max(1, (options.epochs - start_epoch) * options.steps_per_epoch)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> None:
        """Log the throughput of this call: steps, samples, samples/s."""
        if not self.done:
            return
        seconds = max(self.elapsed(), 1e-9)
        samples = self.done * self.options.batch_size
        log.info(
            "%s: %d optimizer steps, %d samples in %.1f s: %.2f samples/s",
            self.options.description,
            self.done,
            samples,
            seconds,
            samples / seconds,
        )

    def step_done(self, epoch: int, step: int, steps: int, loss_sum: torch.Tensor) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last < self.options.progress_interval:
            return
        self.last = now
        per_step = (now - self.started) / self.done
        left = (self.total - self.done) * per_step
        if self.options.time_limit is not None:
            left = min(left, max(0.0, self.options.time_limit - (now - self.started)))
        log.info(
            "%s: epoch %d/%d step %d/%d loss %.5f, %.2f s/step, ETA %s",
            self.options.description,
            epoch + 1,
            self.options.epochs,
            step + 1,
            steps,
            float(loss_sum[0] / loss_sum[1]),
            per_step,
            format_duration(left),
        )


def format_duration(seconds: float) -> str:
    """``"42 s"``, ``"12 min 03 s"``, ``"2 h 05 min"``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
