"""Validation of the simulation settings (spIsoNet.simulate.settings)."""

from __future__ import annotations

import pytest

from spIsoNet import simulate as sim


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError):
        sim.OrientationModel(fraction_preferred=1.5)
    with pytest.raises(ValueError):
        sim.OrientationModel(cone_angle=0.0)
    with pytest.raises(ValueError):
        sim.SimulationSettings(snr=0.0)
    with pytest.raises(ValueError):
        sim.SimulationSettings(box=8)
