"""The 24 cube rotations."""

from __future__ import annotations

import numpy as np
import torch

from spIsoNet.engine.rotations import N_ROTATIONS, rotate, rotate_batch, rotation_matrices

# --------------------------------------------------------------------------------------------
# rotations


def test_24_rotations_distinct_proper_and_closed():
    mats = rotation_matrices()
    assert mats.shape == (N_ROTATIONS, 3, 3) == (24, 3, 3)
    assert len({m.tobytes() for m in mats}) == 24
    assert np.all(np.round(np.linalg.det(mats)) == 1)
    assert any((m == np.eye(3, dtype=int)).all() for m in mats)
    # closure, checked on an asymmetric volume (not just on the matrices)
    vol = torch.arange(4**3, dtype=torch.float32).reshape(4, 4, 4)
    rotated = [rotate(vol, r) for r in range(24)]
    for a in range(24):
        for b in range(24):
            composed = rotate(rotate(vol, a), b)
            assert any(torch.equal(composed, rotated[c]) for c in range(24)), (a, b)


def test_rotate_batch_equals_per_sample_rotation():
    gen = torch.Generator().manual_seed(0)
    batch = torch.randn(6, 1, 5, 5, 5, generator=gen)
    ids = [3, 0, 17, 3, 23, 9]
    out = rotate_batch(batch, ids)
    for i, r in enumerate(ids):
        assert torch.equal(out[i], rotate(batch[i], r))
