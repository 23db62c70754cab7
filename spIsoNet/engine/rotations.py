"""The 24 proper rotations of a cube, applied exactly with :func:`torch.rot90`.

A rotation is stored as a short sequence of quarter turns ``(k, plane)`` over the three spatial
axes (the last three dimensions of a tensor, ``z, y, x``). The set is built as
"send the z axis to one of its 6 signed directions" × "turn 0–3 quarters about the new z axis",
which enumerates the rotation group of the cube (order 24) exactly once. ``torch.rot90`` only
permutes voxels, so no interpolation error is introduced and every rotation is invertible.
"""

from __future__ import annotations

import numpy as np
import torch

#: spatial planes for ``torch.rot90`` on tensors shaped ``[..., z, y, x]``
_ZY, _YX, _ZX = (-3, -2), (-2, -1), (-3, -1)

# First step: bring the z axis to each of the 6 signed axis directions; second step: 0..3
# quarter turns in the (y, x) plane (about z, applied first so it acts in the original frame).
_FACE_MOVES: tuple[tuple[tuple[int, tuple[int, int]], ...], ...] = (
    (),
    ((1, _ZY),),
    ((2, _ZY),),
    ((3, _ZY),),
    ((1, _ZX),),
    ((3, _ZX),),
)

#: the 24 rotations, each a tuple of ``(quarter_turns, plane)`` applied left to right
ROTATIONS: tuple[tuple[tuple[int, tuple[int, int]], ...], ...] = tuple(
    (((spin, _YX),) if spin else ()) + face for face in _FACE_MOVES for spin in range(4)
)
N_ROTATIONS = len(ROTATIONS)


def rotate(volume: torch.Tensor, index: int) -> torch.Tensor:
    """Rotate ``volume`` (shape ``[..., n, n, n]``) by rotation number ``index`` (0 = identity)."""
    out = volume
    for turns, plane in ROTATIONS[index]:
        out = torch.rot90(out, turns, plane)
    return out


def rotate_batch(volumes: torch.Tensor, indices: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Rotate each sample of a batch by its own rotation.

    Parameters
    ----------
    volumes
        Tensor ``[b, c, n, n, n]``.
    indices
        ``b`` rotation numbers in ``0..23``.

    Returns
    -------
    torch.Tensor
        Same shape; sample ``i`` rotated by ``ROTATIONS[indices[i]]``. One ``rot90`` per distinct
        rotation present in the batch (not per sample).
    """
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    out = torch.empty_like(volumes)
    for value in torch.unique(idx).tolist():
        members = (idx == value).nonzero().flatten().to(volumes.device)
        out[members] = rotate(volumes[members], value)
    return out


def rotation_matrices() -> np.ndarray:
    """Signed permutation matrices ``[24, 3, 3]`` (z, y, x order) of the rotations, for tests/docs.

    Column ``j`` of matrix ``r`` is where the unit vector along axis ``j`` goes, measured on a
    3-voxel probe cube centred on its middle voxel.
    """
    probe_size = 3
    mats = np.zeros((N_ROTATIONS, 3, 3), dtype=np.int64)
    for r in range(N_ROTATIONS):
        for axis in range(3):
            probe = torch.zeros((probe_size,) * 3)
            position = [1, 1, 1]
            position[axis] = 2
            probe[tuple(position)] = 1.0
            moved = rotate(probe, r).nonzero()[0].numpy() - 1
            mats[r, :, axis] = moved
    return mats
