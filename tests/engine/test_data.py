"""Training data: the per-epoch step plan."""

from __future__ import annotations

import numpy as np

from spIsoNet.engine.data import make_step_plan


def test_step_plan_depends_only_on_seed_and_epoch():
    a = make_step_plan(10, 4, 5, seed=1, epoch=2)
    b = make_step_plan(10, 4, 5, seed=1, epoch=2)
    c = make_step_plan(10, 4, 5, seed=1, epoch=3)
    assert np.array_equal(a.cubes, b.cubes) and np.array_equal(a.rotations, b.rotations)
    assert not np.array_equal(a.cubes, c.cubes)
    assert a.rotations.max() < 24 and a.swap.any() and not a.swap.all()
