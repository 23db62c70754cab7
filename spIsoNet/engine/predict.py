"""Whole-map prediction from overlapping tiles with smooth blending.

Tiles of ``tile`` voxels start on multiples of ``2**depth`` (so every tile sees the same
down-sampling grid as a whole-volume pass) and overlap by ``overlap`` voxels. Each tile's output is
weighted by a separable window that is 0 on a ``margin`` next to tile faces interior to the map,
rises with a raised-cosine ramp across the rest of the overlap and is 1 elsewhere (including at the
faces on the map border). Weighted outputs are summed and divided by the summed weights. For a
network whose receptive radius is at most ``margin`` (local normalisation), every contributing tile
value equals the whole-volume output, so tiling is exact.

Tiles are run in batches; with several processes each takes every ``world_size``-th tile and the
partial weighted sums are added on the main process.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
from torch import nn

from spIsoNet.engine import interrupt
from spIsoNet.engine.device import autocast_dtype
from spIsoNet.engine.distributed import DistContext
from spIsoNet.engine.train import format_duration
from spIsoNet.log import get_logger

log = get_logger("engine")

#: seconds between prediction progress log lines
PROGRESS_INTERVAL = 30.0


class _TileProgress:
    """A log line (tiles done, tiles/s, ETA) at most every :data:`PROGRESS_INTERVAL` seconds."""

    def __init__(self, tiles: int, edge: int) -> None:
        self.tiles, self.edge = tiles, edge
        self.started = self.last = time.monotonic()

    def summary(self) -> None:
        """Log the throughput: tiles, seconds, tiles/s (this process's tiles)."""
        seconds = max(time.monotonic() - self.started, 1e-9)
        log.info(
            "prediction: %d tiles of %d³ in %.1f s: %.2f tiles/s",
            self.tiles,
            self.edge,
            seconds,
            self.tiles / seconds,
        )

    def before(self, done: int) -> None:
        now = time.monotonic()
        if done == 0 or now - self.last < PROGRESS_INTERVAL:
            return
        self.last = now
        rate = done / (now - self.started)
        log.info(
            "prediction: tile %d/%d, %.2f tiles/s, ETA %s",
            done,
            self.tiles,
            rate,
            format_duration((self.tiles - done) / rate),
        )


def tile_starts(length: int, tile: int, step: int) -> list[int]:
    """Start positions along one axis of a padded edge ``length`` (multiple of the grid)."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


def tile_layout(n: int, tile: int, overlap: int, grid: int) -> tuple[int, int, list[int]]:
    """How :func:`predict_volume` tiles an ``n``³ map: ``(padded edge, step, starts per axis)``.

    The map is padded to a multiple of ``grid`` (at least one tile); tiles start every ``step =
    tile - overlap`` voxels rounded down to a multiple of ``grid`` (at least ``grid``), the last
    one flush with the padded edge. The map has ``len(starts) ** 3`` tiles.
    """
    padded = max(tile, -(-n // grid) * grid)
    step = max(grid, ((tile - overlap) // grid) * grid)
    return padded, step, tile_starts(padded, tile, step)


def _ramp(width: int) -> np.ndarray:
    if width <= 0:
        return np.zeros(0)
    t = (np.arange(width) + 0.5) / width
    return np.sin(0.5 * np.pi * t) ** 2


def tile_window(
    tile: int, margin: int, ramp: int, low_border: bool, high_border: bool
) -> np.ndarray:
    """1D blending weights of a tile: 0 on the margin, raised-cosine ramp, 1 inside."""
    w = np.ones(tile)
    profile = np.concatenate([np.zeros(margin), _ramp(ramp)])
    if not low_border:
        w[: profile.size] = profile
    if not high_border:
        w[tile - profile.size :] = np.minimum(w[tile - profile.size :], profile[::-1])
    return w


def predict_volume(
    net: nn.Module,
    volume: np.ndarray,
    *,
    tile: int,
    overlap: int,
    margin: int | None = None,
    batch_size: int = 1,
    ctx: DistContext | None = None,
    mixed_precision: bool | None = False,
    grid: int | None = None,
    show_progress: bool = False,
) -> np.ndarray | None:
    """Apply ``net`` to a whole map through overlapping tiles.

    Parameters
    ----------
    net
        Network mapping ``[b, 1, t, t, t]`` → same shape (eval mode is set here).
    volume
        Map ``[n, n, n]`` in network units.
    tile
        Tile edge in voxels (multiple of ``grid``).
    overlap
        Overlap of neighbouring tiles in voxels (``tile - overlap`` is rounded down to a multiple of
        ``grid``, at least ``grid``).
    margin
        Voxels next to an interior tile face that get zero weight (default ``overlap // 8``).
    batch_size
        Tiles per forward pass.
    ctx
        Device and process placement (default: CPU, one process).
    mixed_precision
        Autocast (see :func:`spIsoNet.engine.device.autocast_dtype`).
    grid
        Tiles start on multiples of this (default ``2**net.config.depth``).
    show_progress
        tqdm bar over tile batches (main process only).

    Returns
    -------
    numpy.ndarray or None
        float32 ``[n, n, n]`` on the main process, None on the others.
    """
    ctx = ctx or DistContext(device=torch.device("cpu"))
    grid = grid or 2 ** getattr(getattr(net, "config", None), "depth", 0)
    n = volume.shape[0]
    if tile % grid:
        raise ValueError(f"tile {tile} is not a multiple of {grid}")
    padded, step, starts = tile_layout(n, tile, overlap, grid)
    pad = padded - n
    mode = "reflect" if pad < n else "constant"
    data = np.pad(volume.astype(np.float32), [(0, pad)] * 3, mode=mode) if pad else volume
    margin = overlap // 8 if margin is None else margin
    ramp = tile - step - 2 * margin
    if ramp < 0:
        raise ValueError(f"overlap {tile - step} is smaller than twice the margin {margin}")
    windows = [
        tile_window(tile, margin, ramp, s == 0, s + tile >= padded).astype(np.float32)
        for s in starts
    ]
    # The tiles form a Cartesian grid, so the summed weight is the product of per-axis sums.
    axis_sum = np.zeros(padded, dtype=np.float64)
    for s, w in zip(starts, windows):
        axis_sum[s : s + tile] += w
    positions = [
        (a, b, c)
        for a in range(len(starts))
        for b in range(len(starts))
        for c in range(len(starts))
    ]
    mine = positions[ctx.rank :: ctx.world_size]
    device = ctx.device
    source = torch.from_numpy(np.ascontiguousarray(data)).to(device)
    accum = torch.zeros((padded,) * 3, dtype=torch.float32, device=device)
    win = [torch.from_numpy(w).to(device) for w in windows]
    amp_dtype = autocast_dtype(device.type, mixed_precision)
    autocast = (
        torch.autocast(device.type, dtype=amp_dtype)
        if amp_dtype is not None
        else contextlib.nullcontext()
    )
    net.eval()
    with torch.inference_mode(), autocast:
        batches = range(0, len(mine), batch_size)
        if show_progress and ctx.is_main:
            from tqdm import tqdm

            batches = tqdm(batches, desc="prediction", unit="batch", leave=False)
        progress = _TileProgress(len(mine), tile) if ctx.is_main else None
        for first in batches:
            interrupt.check()
            if progress is not None:
                progress.before(first)
            chunk = mine[first : first + batch_size]
            batch = torch.stack(
                [
                    source[
                        starts[a] : starts[a] + tile,
                        starts[b] : starts[b] + tile,
                        starts[c] : starts[c] + tile,
                    ]
                    for a, b, c in chunk
                ]
            )[:, None]
            out = net(batch)[:, 0].float()
            for (a, b, c), piece in zip(chunk, out):
                weight = win[a][:, None, None] * win[b][None, :, None] * win[c][None, None, :]
                accum[
                    starts[a] : starts[a] + tile,
                    starts[b] : starts[b] + tile,
                    starts[c] : starts[c] + tile,
                ] += piece * weight
    if progress is not None:
        progress.summary()
    ctx.reduce_to_main(accum)
    if not ctx.is_main:
        return None
    norm = axis_sum[:, None, None] * axis_sum[None, :, None] * axis_sum[None, None, :]
    result = accum.cpu().numpy().astype(np.float64) / norm
    return result[:n, :n, :n].astype(np.float32)
