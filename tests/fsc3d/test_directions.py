"""Fibonacci axes, cube-face coordinates and cone weights (spIsoNet.fsc3d.directions)."""

from __future__ import annotations

import math

import numpy as np

from spIsoNet.fsc3d import fibonacci_axes
from spIsoNet.fsc3d.directions import axis_angle_deg, cell_centres, cone_weights, face_coordinates


def test_fibonacci_axes_cover_the_hemisphere_evenly():
    axes = fibonacci_axes(256)
    np.testing.assert_allclose(np.linalg.norm(axes, axis=1), 1.0)
    assert np.all(axes[:, 0] >= 0)
    angles = axis_angle_deg(axes[:, None, :], axes[None, :, :])
    np.fill_diagonal(angles, 90.0)
    nearest = angles.min(axis=1)
    # 256 axes ≈ 2π/256 sr each → spacing ≈ 9°; no clumping, no holes
    assert nearest.min() > 4.0 and nearest.max() < 12.0
    # any axis on the sphere is within ~8° of one of them
    probe = np.random.default_rng(0).standard_normal((500, 3))
    assert axis_angle_deg(probe[:, None, :], axes[None]).min(axis=1).max() < 9.0


def test_face_coordinates_round_trip_and_antipode_invariance(rng):
    vectors = rng.standard_normal((1000, 3))
    face, alpha, beta = face_coordinates(*vectors.T)
    face2, alpha2, beta2 = face_coordinates(*(-vectors).T)
    assert np.array_equal(face, face2)
    np.testing.assert_allclose(alpha, alpha2)
    assert np.all(np.abs(alpha) <= math.pi / 4 + 1e-6) and np.all(
        np.abs(beta) <= math.pi / 4 + 1e-6
    )
    centres, _ = cell_centres(8, 1)
    assert centres.shape == (3 * 10 * 10, 3)


def test_cone_weights_cover_the_cap_area():
    """Σ weights · cell solid angle ≈ the cap's solid angle 2π(1 − cos θ).

    Cells are axes (±k share a cell), so the 3·g² cells tile a hemisphere's 2π sr and a double
    cone covers one cap's worth of them."""
    g = 40
    centres, size = cell_centres(g, 0)
    axes = fibonacci_axes(50)
    for cone in (10.0, 20.0):
        weights = cone_weights(axes, cone, g)
        area = weights @ (size**2)
        expected = 2 * math.pi * (1 - math.cos(math.radians(cone)))
        np.testing.assert_allclose(area, expected, rtol=0.02)
    np.testing.assert_allclose(np.sum(size**2), 2 * math.pi, rtol=1e-3)
