"""Viewing directions of the particles and their Fourier-slice sampling weights (stages 2-3)."""

from __future__ import annotations

import numpy as np

from spIsoNet.fourier import frequency_radius
from spIsoNet.simulate._geometry import _rotation_to, _unit
from spIsoNet.simulate.settings import OrientationModel

__all__ = ["corners_01", "sample_view_directions", "sample_views", "sampling_weights"]


def corners_01() -> list[tuple[int, int, int]]:
    """Return the 8 corner offsets (dz, dy, dx) of a unit cell, in C order."""
    return [(dz, dy, dx) for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)]


def sample_view_directions(
    model: OrientationModel, n: int, rng: np.random.Generator, preferred: bool | None = None
) -> np.ndarray:
    """Draw ``n`` viewing directions from the orientation model.

    Parameters
    ----------
    model : OrientationModel
    n : int
        Number of directions.
    rng : numpy Generator
    preferred : bool, optional
        True: all from the preferred cone; False: all uniform; None: mixed with
        ``model.fraction_preferred`` (in random order).

    Returns
    -------
    np.ndarray
        float64 [n, 3] unit vectors (z, y, x).
    """
    if preferred is None:
        n_pref = int(round(model.fraction_preferred * n))
    else:
        n_pref = n if preferred else 0
    uniform = _unit(rng, n - n_pref)
    # Uniform on a spherical cap: cos θ uniform in [cos α, 1], φ uniform; random pole (±axis).
    cos_t = rng.uniform(np.cos(np.deg2rad(model.cone_angle)), 1.0, n_pref)
    sin_t = np.sqrt(1.0 - cos_t**2)
    phi = rng.uniform(0.0, 2.0 * np.pi, n_pref)
    cap = np.stack([cos_t, sin_t * np.cos(phi), sin_t * np.sin(phi)], axis=1)
    cap *= rng.choice([-1.0, 1.0], size=(n_pref, 1))
    axis = np.asarray(model.axis, dtype=np.float64)
    cap = cap @ _rotation_to(axis / np.linalg.norm(axis)).T
    dirs = np.concatenate([cap, uniform])
    return dirs[rng.permutation(n)]


def sample_views(
    model: OrientationModel, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct view directions of one half-set and the number of particles on each.

    The preferred and the uniform particles are spread over separate sets of views; the uniform
    part gets at least two thirds of ``model.n_views`` because it alone fills the poorly sampled
    directions, where a coarse view set would leave artificial holes.

    Returns
    -------
    directions : np.ndarray
        float64 [v, 3] unit vectors (z, y, x).
    particles : np.ndarray
        float64 [v], particles per view (sums to ``model.n_particles``).
    """
    n_pref = int(round(model.fraction_preferred * model.n_particles))
    n_unif = model.n_particles - n_pref
    if n_unif == 0:
        v_pref, v_unif = min(n_pref, model.n_views), 0
    elif n_pref == 0:
        v_pref, v_unif = 0, min(n_unif, model.n_views)
    else:
        v_pref = max(1, min(n_pref, model.n_views // 3))
        v_unif = max(1, min(n_unif, model.n_views - v_pref))
    dirs = np.concatenate(
        [
            sample_view_directions(model, v_pref, rng, preferred=True),
            sample_view_directions(model, v_unif, rng, preferred=False),
        ]
    )
    particles = np.concatenate(
        [np.full(v_pref, n_pref / max(v_pref, 1)), np.full(v_unif, n_unif / max(v_unif, 1))]
    )
    return dirs, particles


def sampling_weights(
    directions: np.ndarray,
    box: int,
    particles_per_view: float | np.ndarray = 1.0,
    rng: np.random.Generator | None = None,
    batch: int = 128,
) -> np.ndarray:
    """Fourier sampling weights of the central slices of the given view directions.

    Every view inserts its image's Fourier pixels (unit-spaced 2-D grid in the plane
    perpendicular to the view direction, within the Nyquist radius box/2, random in-plane
    rotation) into the 3-D grid with trilinear weights t, accumulated with torch ``index_add_``
    over blocks of views on a padded centred grid, then folded onto the FFT layout with
    ``np.bincount`` (no per-view Python work beyond the block loop).

    Parameters
    ----------
    directions : np.ndarray
        [v, 3] unit view directions (z, y, x).
    box : int
        Box edge, voxels.
    particles_per_view : float or np.ndarray
        Particles sharing each direction (scalar or [v]); weights every view's insertion.
    rng : numpy Generator, optional
        Source of the in-plane rotations (default: none, all zero).
    batch : int
        Views per vectorised block.

    Returns
    -------
    np.ndarray
        W, float32 [box, box, box//2+1] (rfft layout, DC at [0, 0, 0]): Σ m·t in particles,
        zero beyond the Nyquist sphere.
    """
    import torch  # index_add_ accumulates the trilinear weights

    d = np.asarray(directions, dtype=np.float64)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    # Orthonormal in-plane basis (u, v) per view, rotated by a random in-plane angle ψ.
    helper = np.where(np.abs(d[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    u = np.cross(d, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(d, u)
    psi = rng.uniform(0.0, 2.0 * np.pi, len(d)) if rng is not None else np.zeros(len(d))
    c, s = np.cos(psi)[:, None], np.sin(psi)[:, None]
    u, v = c * u + s * v, c * v - s * u
    # Image Fourier pixels inside the Nyquist circle.
    q = np.arange(-(box // 2), box // 2 + 1, dtype=np.float64)
    q1, q2 = np.meshgrid(q, q, indexing="ij")
    inside = q1**2 + q2**2 <= (box / 2.0) ** 2
    q1, q2 = q1[inside], q2[inside]
    # Accumulate on a centred, padded grid (no wrap-around inside the hot loop), fold afterwards.
    offset = box // 2 + 1
    size = box + 4
    corner_offsets = torch.tensor([(dz * size + dy) * size + dx for dz, dy, dx in corners_01()])
    q1 = torch.from_numpy(q1.astype(np.float32))
    q2 = torch.from_numpy(q2.astype(np.float32))
    u_t = torch.from_numpy(u.astype(np.float32))
    v_t = torch.from_numpy(v.astype(np.float32))
    per_view = torch.from_numpy(
        np.broadcast_to(np.asarray(particles_per_view, dtype=np.float64), (len(d),)).copy()
    )
    w = torch.zeros(size**3, dtype=torch.float64)
    for start in range(0, len(d), batch):
        sl = slice(start, start + batch)
        pts = q1[None, :, None] * u_t[sl, None, :] + q2[None, :, None] * v_t[sl, None, :]
        pts = pts.reshape(-1, 3) + offset
        base = torch.floor(pts)
        frac = pts - base
        base = base.long()
        # Separable trilinear weights: per axis (1 - f, f) for corner offsets (0, 1).
        ax = torch.stack([1.0 - frac, frac], dim=2)  # [p, 3, 2]
        t = ax[:, 0, :, None, None] * ax[:, 1, None, :, None] * ax[:, 2, None, None, :]
        t = t.reshape(-1, q1.shape[0] * 8).double()
        weighted = (t * per_view[sl, None]).reshape(-1)  # m particles per view: W += m·t
        flat = ((base[:, 0] * size + base[:, 1]) * size + base[:, 2])[:, None] + corner_offsets
        flat = flat.reshape(-1)
        w.index_add_(0, flat, weighted)
    # Fold the padded centred grid onto the FFT layout (k mod box).
    k = np.mod(np.arange(size) - offset, box)
    fold = ((k[:, None, None] * box + k[None, :, None]) * box + k[None, None, :]).ravel()
    w = np.bincount(fold, weights=w.numpy(), minlength=box**3)
    keep = frequency_radius(box) <= box / 2.0
    shape = (box, box, box)
    half = np.s_[:, :, : box // 2 + 1]
    return np.where(keep, w.reshape(shape)[half], 0.0).astype(np.float32)
