"""Ground truth: a protein-like pseudo-atomic model spread onto the grid (stage 1)."""

from __future__ import annotations

import numpy as np

from spIsoNet.fourier import frequency_axes, irfft3, rfft3
from spIsoNet.simulate._geometry import _random_rotation, _rotation_to, _unit

__all__ = ["phantom", "pseudo_atoms"]


def _inside(points: np.ndarray, centres: np.ndarray, inv_axes: np.ndarray) -> np.ndarray:
    """Whether points [p, 3] lie in the union of ellipsoids (centres [e, 3], inv_axes [e, 3, 3])."""
    rel = points[:, None, :] - centres[None, :, :]
    local = np.einsum("eij,pej->pei", inv_axes, rel)
    return (np.sum(local**2, axis=-1) <= 1.0).any(axis=1)


def pseudo_atoms(rng: np.random.Generator, radius: float) -> np.ndarray:
    """Pseudo-atom coordinates of a compact, non-symmetric protein-like model.

    Parameters
    ----------
    rng : numpy Generator
    radius : float
        Approximate outer radius of the molecule, Å.

    Returns
    -------
    np.ndarray
        float64 [n_atoms, 3] coordinates (z, y, x) in Å, centred near the origin.
    """
    # Envelope: one big and two smaller ellipsoids, randomly oriented and offset.
    sizes = np.array([0.72, 0.58, 0.5])[:, None] * radius * rng.uniform(0.75, 1.15, size=(3, 3))
    centres = np.zeros((3, 3))
    centres[1:] = _unit(rng, 2) * radius * rng.uniform(0.35, 0.5, size=(2, 1))
    rots = np.stack([_random_rotation(rng) for _ in range(3)])
    inv_axes = np.einsum("eij,ekj->eik", 1.0 / sizes[:, :, None] * np.eye(3), rots)
    envelope_volume = float(np.sum(4.0 / 3.0 * np.pi * np.prod(sizes, axis=1)))
    target_residues = int(0.6 * envelope_volume / 135.0)  # ~135 Å^3 per residue

    elements: list[np.ndarray] = []  # each: pseudo-Cα trace [r, 3] of one helix or sheet strand
    axes_pts: list[np.ndarray] = []  # coarse points on each element, for clash tests
    n_res = 0
    attempts = 0
    while n_res < target_residues and attempts < 6000:
        attempts += 1
        start = centres[rng.integers(3)] + (rng.uniform(-1, 1, 3) * sizes.max(axis=0) * 0.8)
        direction = _unit(rng, 1)[0]
        if rng.random() < 0.8:  # α-helix
            length = int(rng.integers(8, 22))
            t = np.arange(length)
            frame = _rotation_to(direction)
            local = np.stack(
                [1.5 * t, 2.3 * np.cos(np.deg2rad(100.0) * t), 2.3 * np.sin(np.deg2rad(100.0) * t)],
                axis=1,
            )
            traces = [start + local @ frame.T]
            spine = [start + np.outer(np.linspace(0, 1.5 * (length - 1), 5), direction)]
        else:  # β-sheet: 3-5 strands, 4.8 Å apart, pleated by ±0.9 Å
            n_strands = int(rng.integers(3, 6))
            length = int(rng.integers(5, 9))
            side = np.cross(direction, _unit(rng, 1)[0])
            side /= np.linalg.norm(side)
            normal = np.cross(direction, side)
            t = np.arange(length)
            traces, spine = [], []
            for s in range(n_strands):
                base = start + side * 4.8 * s
                pleat = 0.9 * (-1.0) ** t
                traces.append(base + np.outer(3.3 * t, direction) + np.outer(pleat, normal))
                spine.append(base + np.outer(np.linspace(0, 3.3 * (length - 1), 4), direction))
        pts = np.concatenate(traces)
        coarse = np.concatenate(spine)
        if not _inside(pts, centres, inv_axes).all():
            continue
        if axes_pts:
            existing = np.concatenate(axes_pts)
            d = np.linalg.norm(coarse[:, None, :] - existing[None, :, :], axis=-1)
            if d.min() < 7.5:  # keep elements ~helix-packing distance apart
                continue
        elements.extend(traces)
        axes_pts.append(coarse)
        n_res += len(pts)

    # Loops: connect consecutive elements with a wobbly path of ~3.3 Å steps.
    loops = []
    for a, b in zip(elements[:-1], elements[1:]):
        gap = b[0] - a[-1]
        n_loop = int(np.linalg.norm(gap) / 3.3)
        if n_loop < 1 or n_loop > 12:  # long jumps are different chains, not loops
            continue
        s = np.linspace(0, 1, n_loop + 2)[1:-1, None]
        bulge = np.sin(np.pi * s) * _unit(rng, 1) * rng.uniform(1.0, 4.0)
        loops.append(a[-1] + s * gap + bulge + rng.normal(0, 0.6, (n_loop, 3)))
    ca = np.concatenate(elements + loops) if elements else np.zeros((1, 3))

    # Atoms per residue: 4 backbone atoms within ~1.5 Å, 0-6 side-chain atoms going outwards.
    backbone = np.repeat(ca, 4, axis=0) + _unit(rng, 4 * len(ca)) * 1.45
    n_side = rng.integers(0, 7, size=len(ca))
    owner = np.repeat(np.arange(len(ca)), n_side)
    step = np.concatenate([np.arange(k) for k in n_side]) if n_side.sum() else np.zeros(0)
    outward = ca - ca.mean(axis=0)
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-6)
    res_dir = outward + 0.8 * _unit(rng, len(ca))
    res_dir /= np.linalg.norm(res_dir, axis=1, keepdims=True)
    jitter = rng.normal(0, 0.5, (len(step), 3))
    side = ca[owner] + res_dir[owner] * (1.5 * (step[:, None] + 1)) + jitter
    atoms = np.concatenate([ca, backbone, side])
    return atoms - atoms.mean(axis=0)


def phantom(
    box: int, voxel_size: float, seed: int | np.random.SeedSequence = 0, b_factor: float = 100.0
) -> np.ndarray:
    """Protein-like ground-truth density on a cubic grid.

    Parameters
    ----------
    box : int
        Box edge, voxels.
    voxel_size : float
        Å per voxel.
    seed : int or SeedSequence
        Same seed → identical map.
    b_factor : float
        Isotropic B-factor, Å².

    Returns
    -------
    np.ndarray
        float32 [box, box, box], zero-mean solvent ~0, max ~1, molecule centred in the box.
    """
    rng = np.random.default_rng(seed)
    radius = 0.36 * box * voxel_size
    atoms = pseudo_atoms(rng, radius) / voxel_size + box // 2  # voxel coordinates (z, y, x)
    atoms = atoms[np.all((atoms >= 0) & (atoms < box - 1), axis=1)]
    # Trilinear splat with one bincount over the 8 corners of every atom.
    base = np.floor(atoms).astype(np.int64)
    frac = atoms - base
    corners = np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, 8).T
    idx = base[:, None, :] + corners[None, :, :]  # [a, 8, 3]
    w = np.prod(np.where(corners[None] == 1, frac[:, None, :], 1.0 - frac[:, None, :]), axis=2)
    flat = (idx[..., 0] * box + idx[..., 1]) * box + idx[..., 2]
    grid = np.bincount(flat.ravel(), weights=w.ravel(), minlength=box**3)
    grid = grid.reshape(box, box, box).astype(np.float32)

    spectrum = rfft3(grid)
    kz, ky, kx = frequency_axes(box)
    # Divide out the splat's transfer function (sinc² per axis), then apply the B-factor.
    splat = (np.sinc(kz / box) * np.sinc(ky / box) * np.sinc(kx / box)) ** 2
    s2 = (kz**2 + ky**2 + kx**2) / (box * voxel_size) ** 2  # (1/Å)^2
    spectrum *= (np.exp(-b_factor * s2 / 4.0) / np.maximum(splat, 0.05)).astype(np.float32)
    density = irfft3(spectrum, box)
    density -= np.median(density)  # solvent at ~0
    return (density / density.max()).astype(np.float32)
