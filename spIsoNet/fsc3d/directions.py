"""Directions on the sphere: Fibonacci axes and the cube-sphere grid used to bin Fourier voxels.

Everything here works with *axes* (unit vectors up to sign): a conical FSC around ``u`` uses the
double cone ``±u`` (Friedel symmetry), so ``u`` and ``-u`` are the same axis.

Cube-sphere grid
----------------
An axis ``k`` is put on one of three "faces" by its largest absolute component (z, y or x, in
that order on ties) and described there by two equal-angle coordinates
``alpha = atan(k_p / k_m)``, ``beta = atan(k_q / k_m)`` in ``[-pi/4, pi/4]`` (``m`` the major
axis, ``p < q`` the other two). The ratios do not change when ``k`` is negated, so ``±k`` land
on the same point. Each face is cut into ``g × g`` cells of ``step = (pi/2) / g`` radians.
Binning is pure arithmetic per voxel (no nearest-neighbour search).

Vectors are ``(z, y, x)`` ordered, like the maps.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.sparse
import scipy.spatial

__all__ = [
    "axis_angle_deg",
    "fibonacci_axes",
    "grid_size",
    "cell_centres",
    "face_coordinates",
    "cone_weights",
]

#: other two axes of each face, in increasing order: face 0 (z major) → (y, x), etc.
_FACE_OTHERS = ((1, 2), (0, 2), (0, 1))
#: axes per k-d tree range search in :func:`cone_weights` (bounds the pair arrays)
_AXIS_CHUNK = 512


def fibonacci_axes(n: int) -> np.ndarray:
    """``n`` evenly spread axes on the upper hemisphere (Fibonacci spiral).

    A Fibonacci spiral restricted to ``z ≥ 0``: ``z_i = 1 − (i − ½)/n``,
    ``phi_i = i·pi·(3 − sqrt 5)`` (i = 1 … n). Because a conical FSC uses the double cone, the
    hemisphere already covers every axis once (SIMPLE's full-sphere spiral would count each axis
    about twice).

    Returns
    -------
    numpy.ndarray
        float64 ``[n, 3]`` unit vectors in ``(z, y, x)`` order.
    """
    if n < 1:
        raise ValueError(f"need at least one direction, got {n}")
    i = np.arange(1, n + 1, dtype=np.float64)
    z = 1.0 - (i - 0.5) / n
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    rho = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    return np.stack([z, rho * np.sin(phi), rho * np.cos(phi)], axis=1)


def axis_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (degrees, in [0, 90]) between axes ``a`` and ``b`` (``[..., 3]``, any length)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    cos = np.abs(np.sum(a * b, axis=-1)) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))


def grid_size(step_deg: float) -> int:
    """Cells per face edge for a target cell size ``step_deg`` (degrees)."""
    return max(2, int(math.ceil(90.0 / step_deg)))


def face_coordinates(kz: np.ndarray, ky: np.ndarray, kx: np.ndarray):
    """Face and equal-angle coordinates of axes given by their components.

    Parameters
    ----------
    kz, ky, kx
        Components (same shape, any real dtype, not all zero).

    Returns
    -------
    face : numpy.ndarray
        int8, 0 (z major), 1 (y major) or 2 (x major).
    alpha, beta : numpy.ndarray
        float32 angles in ``[-pi/4, pi/4]`` (radians).
    """
    az, ay, ax = np.abs(kz), np.abs(ky), np.abs(kx)
    face = np.where((az >= ay) & (az >= ax), 0, np.where(ay >= ax, 1, 2)).astype(np.int8)
    major = np.where(face == 0, kz, np.where(face == 1, ky, kx)).astype(np.float32)
    first = np.where(face == 0, ky, kz).astype(np.float32)
    second = np.where(face == 2, ky, kx).astype(np.float32)
    alpha = np.arctan(first / major)
    beta = np.arctan(second / major)
    return face, alpha, beta


def _face_vectors(face: int, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Map face coordinates to unit vectors ``[..., 3]`` (inverse of :func:`face_coordinates`)."""
    vec = np.empty(alpha.shape + (3,), dtype=np.float64)
    p, q = _FACE_OTHERS[face]
    vec[..., face] = 1.0
    vec[..., p] = np.tan(alpha)
    vec[..., q] = np.tan(beta)
    return vec / np.linalg.norm(vec, axis=-1, keepdims=True)


@functools.lru_cache(maxsize=8)
def cell_centres(g: int, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the ``3·(g + 2·pad)²`` cells of a ``g × g``-per-face grid.

    ``pad`` extra rings continue each face's equal-angle grid past its edge (the directions
    exist, they just belong to a neighbouring face); they let bilinear interpolation work
    across face edges without special cases.

    Returns
    -------
    centres : numpy.ndarray
        float64 ``[3·(g+2·pad)², 3]`` unit vectors, index ``(face·m + i)·m + j`` with
        ``m = g + 2·pad`` and ``i, j`` the padded alpha/beta cell indices.
    size : numpy.ndarray
        float64 ``[3·m²]``: square root of each cell's solid angle (radians), a length scale.
    """
    step = 0.5 * math.pi / g
    centre_angles = -0.25 * math.pi + (np.arange(-pad, g + pad) + 0.5) * step
    alpha, beta = np.meshgrid(centre_angles, centre_angles, indexing="ij")
    vectors = np.concatenate([_face_vectors(f, alpha, beta).reshape(-1, 3) for f in range(3)])
    # solid angle of an equal-angle cell: dΩ = sec²α sec²β / (1 + tan²α + tan²β)^{3/2} dα dβ
    ta, tb = np.tan(alpha), np.tan(beta)
    jac = (1 + ta**2) * (1 + tb**2) / (1 + ta**2 + tb**2) ** 1.5
    size = np.tile(np.sqrt(jac).ravel() * step, 3)
    vectors.setflags(write=False)
    size.setflags(write=False)
    return vectors, size


def cone_weights(
    axes: np.ndarray,
    cone_angle_deg: float,
    g: int,
) -> scipy.sparse.csr_matrix:
    """Sparse weights of the source cells of a ``g``-grid inside the double cone of each axis.

    A cell whose centre is at angle ``d`` from the axis gets
    ``clip((theta − d)/s + ½, 0, 1)``, ``s`` the cell's size: cells well inside count fully,
    cells cut by the cone edge count by (approximately) the fraction inside. This anti-aliasing
    makes the binned cone's area match the exact cone's instead of jumping cell by cell.
    Candidate pairs come from a k-d tree range search on the unit sphere (chord distance),
    against the cell centres and their antipodes (double cone).

    Parameters
    ----------
    axes
        ``[q, 3]`` unit vectors.
    cone_angle_deg
        Half-angle of the cone (degrees).
    g
        Source grid cells per face edge (``3·g²`` cells, unpadded).

    Returns
    -------
    scipy.sparse.csr_matrix
        float64 ``[q, 3·g²]``.
    """
    theta = math.radians(cone_angle_deg)
    sources, size = cell_centres(g, 0)
    n_sources = len(sources)
    if cone_angle_deg >= 90.0:  # every axis is within 90° of every other: the whole shell
        return scipy.sparse.csr_matrix(np.ones((len(axes), n_sources)))
    reach = min(theta + 0.5 * float(size.max()), 0.5 * math.pi)
    chord = 2.0 * math.sin(0.5 * reach) + 1e-9
    source_tree = scipy.spatial.cKDTree(np.concatenate([sources, -sources]))
    axes = np.asarray(axes, dtype=np.float64)
    parts = []
    for a0 in range(0, len(axes), _AXIS_CHUNK):  # bounded pair arrays (peak memory)
        axis_tree = scipy.spatial.cKDTree(axes[a0 : a0 + _AXIS_CHUNK])
        pairs = axis_tree.sparse_distance_matrix(source_tree, chord, output_type="ndarray")
        cols = (pairs["j"] % n_sources).astype(np.int32)
        angle = 2.0 * np.arcsin(np.clip(0.5 * pairs["v"], 0.0, 1.0))
        weights = np.clip((theta - angle) / size[cols] + 0.5, 0.0, 1.0)
        keep = weights > 0
        rows = pairs["i"][keep].astype(np.int32)
        del pairs, angle
        block = scipy.sparse.coo_matrix(
            (weights[keep], (rows, cols[keep])), shape=(len(axis_tree.data), n_sources)
        )
        # a cell and its antipode are both in range only when reach ≥ 90°: sum_duplicates
        # (tocsr) would then double-count, so keep the larger weight of the two
        parts.append(block.tocsr() if reach < 0.5 * math.pi else _max_duplicates(block))
    return scipy.sparse.vstack(parts, format="csr")


def _max_duplicates(matrix: scipy.sparse.coo_matrix) -> scipy.sparse.csr_matrix:
    """CSR matrix keeping the largest value of duplicate (row, col) entries."""
    order = np.lexsort((-matrix.data, matrix.col, matrix.row))
    rows, cols, vals = matrix.row[order], matrix.col[order], matrix.data[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return scipy.sparse.csr_matrix((vals[first], (rows[first], cols[first])), shape=matrix.shape)
