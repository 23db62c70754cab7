"""Small rotation and direction helpers shared by the phantom and the view sampling."""

from __future__ import annotations

import numpy as np


def _rotation_to(axis: np.ndarray) -> np.ndarray:
    """Rotation matrix taking (1, 0, 0) to the unit vector ``axis`` (Rodrigues)."""
    a = np.array([1.0, 0.0, 0.0])
    b = axis / np.linalg.norm(axis)
    v = np.cross(a, b)
    c = float(a @ b)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([-1.0, -1.0, 1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)
