"""Simulated cases shared by the simulator tests (computed once per package run)."""

from __future__ import annotations

import pytest

from spIsoNet import simulate as sim

from ._brute import BOX, VOXEL


@pytest.fixture(scope="package")
def preferred_case() -> sim.SimulatedCase:
    settings = sim.SimulationSettings(
        box=BOX,
        voxel_size=VOXEL,
        seed=11,
        orientation=sim.OrientationModel(n_particles=8000, n_views=600),
    )
    return sim.simulate_case(settings)


@pytest.fixture(scope="package")
def isotropic_case() -> sim.SimulatedCase:
    settings = sim.SimulationSettings(
        box=BOX,
        voxel_size=VOXEL,
        seed=11,
        orientation=sim.OrientationModel.isotropic(n_particles=8000, n_views=600),
    )
    return sim.simulate_case(settings)
