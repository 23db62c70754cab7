"""Sphericity of a 3D FSC volume (spIsoNet.fsc3d.sphericity)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spIsoNet.fsc3d.sphericity import isosurface_area, radially_connected, sphericity


def _grid(n):
    k = np.arange(n) - n // 2
    return np.meshgrid(k, k, k, indexing="ij")


def test_isosurface_area_of_sphere():
    z, y, x = _grid(64)
    field = 20.0 - np.sqrt(z**2 + y**2 + x**2)
    assert isosurface_area(field, 0.0) == pytest.approx(4 * math.pi * 20.0**2, rel=0.005)


def test_sphericity_of_ball_and_ellipsoid():
    z, y, x = _grid(96)
    ball = (np.sqrt(z**2 + y**2 + x**2) <= 25).astype(np.float32)
    assert sphericity(ball) == pytest.approx(1.0, abs=0.01)
    a, c = 30.0, 12.0  # oblate spheroid, analytic surface area
    spheroid = ((z / c) ** 2 + (y / a) ** 2 + (x / a) ** 2 <= 1).astype(np.float32)
    e = math.sqrt(1 - c**2 / a**2)
    area = 2 * math.pi * a**2 * (1 + (1 - e**2) / e * math.atanh(e))
    volume = 4 / 3 * math.pi * a * a * c
    expected = math.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area
    assert sphericity(spheroid) == pytest.approx(expected, abs=0.01)


def test_radial_connectivity_cuts_behind_a_gap_and_highpass_fills():
    n = 48
    z, y, x = _grid(n)
    r = np.sqrt(z**2 + y**2 + x**2)
    volume = (r <= 20).astype(np.float32)
    volume[(r > 8) & (r < 10) & (z > 0)] = 0.0  # gap in the upper half only
    kept = radially_connected(volume, 0.143)
    c = n // 2
    assert not kept[c + 15, c, c] and kept[c - 15, c, c] and kept[c, c + 15, c]
    assert not kept[(r > 10) & (z > 0.8 * r) & (r <= 20)].any()  # chains cross the gap
    # below highpass_res everything counts as kept: gap at r≈9 closes when 200 Å ↔ r = 12
    filled = radially_connected(volume, 0.143, voxel_size=200.0 * 12 / n, highpass_res=200.0)
    assert filled[c + 15, c, c]
