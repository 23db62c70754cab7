"""Training data: normalised network inputs, cube positions and the per-step sampling plan.

Cubes are never written to disk: the (one or two) normalised maps stay in memory (on the training
device) and each micro-batch is cropped from them at the planned positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spIsoNet.engine.rotations import N_ROTATIONS
from spIsoNet.errors import InputError
from spIsoNet.log import get_logger

log = get_logger("engine")


@dataclass
class NetworkInput:
    """A map prepared for the network and how to map network outputs back to the input's scale.

    ``original_scale = data * scale + offset`` for the lowpassed input (and for network outputs).
    """

    data: np.ndarray
    scale: float
    offset: float

    def to_input_scale(self, volume: np.ndarray) -> np.ndarray:
        """Bring a volume in network units back to the input's scale (float32)."""
        return (volume * self.scale + self.offset).astype(np.float32)


def prepare_input(
    half: np.ndarray, voxel_size: float, limit_res: float | None, *, name: str = "map"
) -> NetworkInput:
    """Z-score, lowpass to ``limit_res`` (Å) and z-score again.

    Parameters
    ----------
    half
        Map ``[n, n, n]``.
    voxel_size
        Å per voxel.
    limit_res
        Lowpass resolution in Å (None or ≤ Nyquist: no lowpass).
    name
        Used in error messages.
    """
    from spIsoNet.fourier import lowpass

    data = np.asarray(half, dtype=np.float32)
    mean, std = float(data.mean(dtype=np.float64)), float(data.std(dtype=np.float64))
    if not std > 0:
        raise InputError(f"{name}: map is constant; nothing to correct")
    z = (data - mean) / std
    if limit_res is not None and limit_res > 2.0 * voxel_size * (1 + 1e-6):
        z = np.asarray(lowpass(z, limit_res, voxel_size), dtype=np.float32)
    mean2, std2 = float(z.mean(dtype=np.float64)), float(z.std(dtype=np.float64))
    if not std2 > 0:
        raise InputError(f"{name}: map has no content below {limit_res} Å")
    out = ((z - mean2) / std2).astype(np.float32)
    return NetworkInput(data=out, scale=std * std2, offset=mean + std * mean2)


def sample_cube_starts(
    box: int, cube_size: int, n: int, mask: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """Corners ``[n, 3]`` (int64, z y x) of cubes whose centre lies inside the mask.

    A voxel is inside when ``mask > 0.5 · max(mask)`` (the half-height contour of a soft mask); only
    centres whose cube fits in the box are eligible. Sampling is without replacement unless there
    are fewer eligible centres than ``n``.
    """
    half = cube_size // 2
    hi = box - cube_size + half  # last centre whose cube fits
    if mask is None:
        eligible = np.ones((hi - half + 1,) * 3, dtype=bool)
    else:
        inner = mask[half : hi + 1, half : hi + 1, half : hi + 1]
        eligible = inner > 0.5 * float(mask.max())
        if not eligible.any():
            eligible = inner > 0
        if not eligible.any():
            log.warning(
                "no mask voxel is far enough from the box edge for a %d³ cube; "
                "drawing cube centres anywhere in the box",
                cube_size,
            )
            eligible = np.ones_like(inner, dtype=bool)
    flat = np.flatnonzero(eligible)
    picks = rng.choice(flat, size=n, replace=flat.size < n)
    corners = np.stack(np.unravel_index(picks, eligible.shape), axis=1).astype(np.int64)
    return corners  # centre - half + half offset cancels: corner = centre - half


@dataclass
class StepPlan:
    """What every sample of every optimizer step of one epoch is.

    Arrays are ``[steps, batch]``: cube index, whether the two halves are swapped, rotation number.
    The plan depends only on (seed, epoch), never on the number of processes or on the
    micro-batch split, so any split of a step's batch sees exactly the same samples.
    """

    cubes: np.ndarray
    swap: np.ndarray
    rotations: np.ndarray

    @property
    def steps(self) -> int:
        """Optimizer steps of the epoch."""
        return int(self.cubes.shape[0])


def make_step_plan(n_cubes: int, batch_size: int, steps: int, seed: int, epoch: int) -> StepPlan:
    """Shuffle the cubes for one epoch and draw the per-sample half swaps and rotations."""
    rng = np.random.default_rng([seed, epoch, 7919])
    total = steps * batch_size
    order = np.concatenate([rng.permutation(n_cubes) for _ in range(-(-total // n_cubes))], axis=0)[
        :total
    ]
    swap = rng.random(total) < 0.5
    rotations = rng.integers(0, N_ROTATIONS, size=total)
    shape = (steps, batch_size)
    return StepPlan(order.reshape(shape), swap.reshape(shape), rotations.reshape(shape))


def micro_slice(step_batch: int, micro: int, world_size: int, rank: int, index: int) -> slice:
    """Return the samples of micro-batch ``index`` on ``rank`` in a step's ``step_batch``."""
    start = (index * world_size + rank) * micro
    return slice(start, start + micro)


class CubeSource:
    """Crops training cubes from in-memory maps.

    Parameters
    ----------
    maps
        One or two network inputs ``[n, n, n]`` (already on ``device``).
    corners
        ``[m, 3]`` cube corners (z, y, x).
    cube_size
        Cube edge in voxels.
    """

    def __init__(self, maps: list[torch.Tensor], corners: np.ndarray, cube_size: int) -> None:
        self.maps = maps
        self.corners = np.asarray(corners, dtype=np.int64)
        self.cube_size = int(cube_size)

    def __len__(self) -> int:
        """Return the number of cube positions."""
        return int(self.corners.shape[0])

    def crop(self, which: int, cube_ids: np.ndarray) -> torch.Tensor:
        """Cubes ``[b, 1, c, c, c]`` of map ``which`` at the corners ``cube_ids``."""
        c = self.cube_size
        volume = self.maps[which]
        cubes = [
            volume[z : z + c, y : y + c, x : x + c] for z, y, x in self.corners[cube_ids].tolist()
        ]
        return torch.stack(cubes)[:, None]

    def batch(
        self, cube_ids: np.ndarray, swap: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Cubes ``x1, x2`` ``[b, 1, c, c, c]``, swapped where ``swap`` (x2 None: one map)."""
        first = self.crop(0, cube_ids)
        if len(self.maps) == 1:
            return first, None
        second = self.crop(1, cube_ids)
        flip = torch.as_tensor(np.asarray(swap), device=first.device).view(-1, 1, 1, 1, 1)
        return torch.where(flip, second, first), torch.where(flip, first, second)
