"""Simulated preferred-orientation cryo-EM data with a known ground truth.

What is simulated, exactly
--------------------------
1. **Truth** (:func:`phantom`): a protein-like pseudo-atomic model generated in code from a seed
   (no shipped data). A compact, non-symmetric envelope (union of three random ellipsoids) is
   filled with α-helix-like rods (pseudo-Cα on a 2.3 Å-radius helix, 1.5 Å rise, 100° per residue)
   and small β-sheet-like slabs (strands 4.8 Å apart, 3.3 Å rise), joined by loops; every residue
   carries backbone and side-chain pseudo-atoms. Atoms are spread onto the grid by trilinear
   splatting (the splat's sinc² transfer is divided out), then blurred by an isotropic B-factor
   (Fourier factor exp(-B s²/4)). The result has a Guinier plateau and Wilson-like fall-off of
   radial power, secondary-structure texture and a solvent region.
2. **Orientations** (:class:`OrientationModel`): per half-map an independent set of particles:
   ``fraction_preferred`` of them view along directions uniform in a cone of half-angle
   ``cone_angle`` around ``axis`` (either pole), the rest uniform on the sphere. The particles
   are spread over ``n_views`` distinct directions drawn from that distribution (like poses on
   a discrete angular grid; :func:`sample_views` gives the uniform part most of the views).
3. **Fourier-slice sampling** (:func:`sampling_weights`): each view samples the central slice
   perpendicular to its direction: the image's unit-spaced Fourier pixels within the Nyquist
   circle (random in-plane rotation) are inserted with trilinear weights t, so
   W(k) = Σ_views m·t, m = particles per view. Vectorised over blocks of views (torch
   ``index_add_``).
4. **Half-maps** (:func:`reconstruct_half`): the images carry the truth times an imaging
   envelope E(k) = exp(-B_env s²/4) (CTF envelopes, drift, alignment errors; no CTF
   oscillations). Back-projected numerator N(k) = W(k)·E·F(k) + σ·sqrt(W(k))·ξ(k), ξ the Fourier
   transform of white Gaussian noise (Hermitian, unit variance, independent between voxels):
   W(k) independent noisy samples of E·F(k), the information content of the particles' noisy
   central slices. Then a Wiener (RELION-like, T = 1) reconstruction
   F̂ = N / (W + σ²/τ²(|k|)), τ² the per-shell power of E·F (an oracle prior; RELION estimates
   it from the half-map FSC). σ² (noise power per Fourier sample) follows from the per-image
   ``snr``: orientation-averaged variance of a projection over the whole box / pixel noise
   variance. Not simulated: CTF oscillations, alignment errors, heterogeneity; so the
   resolution is set by particle number, SNR, envelope and orientation distribution only.
5. **Mask** (:func:`soft_mask`): from the average of the two half-maps (what a user has), low-passed
   by a Gaussian to ~15 Å, thresholded, extended and given a raised-cosine soft edge.

All randomness comes from ``numpy.random.SeedSequence(seed)``: the truth depends only on the
seed and the grid, half 1 and half 2 use separate child streams (independent particles and noise).
Arrays are float32 ``[z, y, x]``; directions are unit vectors in (z, y, x) order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from spIsoNet.fourier import (
    frequency_axes,
    frequency_radius,
    irfft3,
    radial_average,
    rfft3,
    rfft_multiplicity,
    shell_index,
)

__all__ = [
    "OrientationModel",
    "SimulatedCase",
    "SimulationSettings",
    "phantom",
    "pseudo_atoms",
    "reconstruct_half",
    "sample_view_directions",
    "sample_views",
    "sampling_weights",
    "simulate_case",
    "soft_mask",
]


# --------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class OrientationModel:
    """Distribution of viewing directions of one half-set of particles.

    Attributes
    ----------
    n_particles : int
        Particles per half-map.
    fraction_preferred : float
        Fraction of particles viewing within ``cone_angle`` of ``axis`` (0 → isotropic).
    cone_angle : float
        Half-angle of the preferred cone, degrees.
    axis : tuple of 3 floats
        Preferred viewing direction (z, y, x); normalised internally. Views along it leave the
        Fourier direction ``axis`` poorly sampled, so the map is smeared along ``axis``.
    n_views : int
        Distinct view directions the particles are spread over (cost of the simulation).
    """

    n_particles: int = 10000
    fraction_preferred: float = 0.9
    cone_angle: float = 15.0
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)
    n_views: int = 1500

    def __post_init__(self) -> None:
        if self.n_particles < 1 or self.n_views < 1:
            raise ValueError("n_particles and n_views must be >= 1")
        if not 0.0 <= self.fraction_preferred <= 1.0:
            raise ValueError("fraction_preferred must be in [0, 1]")
        if not 0.0 < self.cone_angle <= 180.0:
            raise ValueError("cone_angle must be in (0, 180] degrees")
        if float(np.linalg.norm(self.axis)) == 0.0:
            raise ValueError("axis must be a non-zero vector")

    @classmethod
    def isotropic(cls, n_particles: int = 10000, n_views: int = 1500) -> OrientationModel:
        """Uniform viewing directions (no preferred orientation)."""
        return cls(n_particles=n_particles, fraction_preferred=0.0, n_views=n_views)


@dataclass(frozen=True)
class SimulationSettings:
    """Everything that defines a simulated case (reproducible from these values alone).

    Attributes
    ----------
    box : int
        Box edge, voxels.
    voxel_size : float
        Å per voxel.
    seed : int
        Master seed (truth, half 1 and half 2 use independent child streams).
    snr : float
        Per-particle-image signal-to-noise ratio (variance over the whole box; cryo-EM images are
        typically 0.01-0.1).
    envelope_b : float
        B-factor of the imaging envelope, Å² (CTF envelopes, drift, alignment errors): the
        particle images carry exp(-B s²/4)·F, so the half-maps are that much blurrier than the
        truth and their high-resolution SNR falls off accordingly.
    b_factor : float
        Isotropic B-factor of the truth, Å² (includes the atomic form factor's fall-off).
    orientation : OrientationModel
        View distribution of each half.
    """

    box: int = 64
    voxel_size: float = 2.0
    seed: int = 0
    snr: float = 0.004
    b_factor: float = 100.0
    envelope_b: float = 80.0
    orientation: OrientationModel = field(default_factory=OrientationModel)

    def __post_init__(self) -> None:
        if self.box < 16:
            raise ValueError("box must be at least 16 voxels")
        if self.voxel_size <= 0 or self.snr <= 0 or self.b_factor < 0 or self.envelope_b < 0:
            raise ValueError("voxel_size and snr must be > 0, b_factor and envelope_b >= 0")

    def to_dict(self) -> dict:
        """JSON-friendly description."""
        return asdict(self)


@dataclass
class SimulatedCase:
    """A simulated preferred-orientation data set with ground truth.

    Attributes
    ----------
    truth : np.ndarray
        float32 [n, n, n], the noise-free density.
    half1, half2 : np.ndarray
        float32 [n, n, n], Wiener reconstructions from independent particle sets.
    mask : np.ndarray
        float32 [n, n, n] in [0, 1], soft solvent mask.
    voxel_size : float
        Å.
    weights : tuple of np.ndarray
        Sampling weight W(k) of half 1 and half 2, float32 rfft layout [n, n, n//2+1]
        (DC at [0, 0, 0]), in particles (0 beyond the Nyquist sphere).
    directions : tuple of np.ndarray
        View directions of half 1 and half 2, [n_views, 3] unit vectors (z, y, x).
    noise_power : float
        σ², noise power per Fourier sample of one particle (unnormalised-FFT units).
    settings : SimulationSettings
    """

    truth: np.ndarray
    half1: np.ndarray
    half2: np.ndarray
    mask: np.ndarray
    voxel_size: float
    weights: tuple[np.ndarray, np.ndarray]
    directions: tuple[np.ndarray, np.ndarray]
    noise_power: float
    settings: SimulationSettings


def corners_01() -> list[tuple[int, int, int]]:
    """The 8 corner offsets (dz, dy, dx) of a unit cell, in C order."""
    return [(dz, dy, dx) for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)]


# --------------------------------------------------------------------------------------------
# ground truth


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


def _inside(points: np.ndarray, centres: np.ndarray, inv_axes: np.ndarray) -> np.ndarray:
    """Whether points [p, 3] lie in the union of ellipsoids (centres [e, 3], inv_axes [e, 3, 3])."""
    rel = points[:, None, :] - centres[None, :, :]
    local = np.einsum("eij,pej->pei", inv_axes, rel)
    return (np.sum(local**2, axis=-1) <= 1.0).any(axis=1)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


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


# --------------------------------------------------------------------------------------------
# orientations and Fourier-slice sampling


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
    rotation) into the 3-D grid with trilinear weights t, accumulated with ``np.bincount``
    over blocks of views (no per-view Python work beyond the block loop).

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


def _noise_power(truth_spectrum: np.ndarray, box: int, snr: float) -> float:
    """σ² per Fourier sample so that the average projection image has the requested SNR.

    A uniformly oriented tent-kernel slice samples a voxel at radius |k| ≥ 1 with mean weight
    1/(2|k|), so the orientation-averaged slice power is Σ_k |F(k)|² · min(1, 1/(2|k|)), DC
    excluded. The pixel variance of the projection is that power / box⁴ (2-D Parseval) and the
    pixel noise variance is σ_img² = signal / snr; one Fourier sample of the noise image then
    has variance σ² = σ_img² · box².
    """
    r = frequency_radius(box)
    mult = rfft_multiplicity(box)[None, None, :]
    sample = np.where(r > 0, np.minimum(1.0, 1.0 / (2.0 * np.maximum(r, 1e-6))), 0.0)
    slice_power = float(np.sum(np.abs(truth_spectrum) ** 2 * sample * mult))
    pixel_signal = slice_power / box**4
    return pixel_signal / snr * box**2


def reconstruct_half(
    truth_spectrum: np.ndarray,
    weights: np.ndarray,
    noise_power: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Wiener reconstruction of one half-map from its accumulated noisy Fourier slices.

    Parameters
    ----------
    truth_spectrum : np.ndarray
        complex64 [n, n, n//2+1], rfft of the signal the images carry (truth × envelope).
    weights : np.ndarray
        W from :func:`sampling_weights` (particles), same layout.
    noise_power : float
        σ², noise power per Fourier sample of one particle.
    rng : numpy Generator
        Noise source of this half.

    Returns
    -------
    np.ndarray
        float32 [n, n, n] half-map.
    """
    n = truth_spectrum.shape[0]
    # ξ: FFT of unit white noise / sqrt(n³) → Hermitian, unit variance per coefficient.
    xi = rfft3(rng.standard_normal((n, n, n), dtype=np.float32)) / np.float32(n**1.5)
    numerator = weights * truth_spectrum + np.sqrt(noise_power * weights) * xi
    shells = shell_index(n)
    # τ² on every shell up to the box corner (the weights reach past Nyquist only as zeros)
    tau2 = radial_average(np.abs(truth_spectrum) ** 2, n, n_shells=int(shells.max()) + 1)
    regulariser = noise_power / np.maximum(tau2[shells], 1e-30)
    estimate = numerator / (weights + regulariser).astype(np.float32)
    estimate[0, 0, 0] = truth_spectrum[0, 0, 0]  # the mean density is not of interest
    return irfft3(estimate, n)


# --------------------------------------------------------------------------------------------
# mask and whole case


def soft_mask(
    volume: np.ndarray,
    voxel_size: float,
    lowpass: float = 15.0,
    threshold: float = 0.12,
    extend: float = 4.0,
    edge: float = 8.0,
) -> np.ndarray:
    """Soft solvent mask of a density map.

    Parameters
    ----------
    volume : np.ndarray
        float [n, n, n] map (e.g. the average of the half-maps).
    voxel_size : float
        Å per voxel.
    lowpass : float
        Gaussian low-pass, Å (σ in Fourier chosen so the filter is 0.5 at 1/lowpass).
    threshold : float
        Binarisation level as a fraction of the low-passed map's maximum.
    extend, edge : float
        Binary dilation and raised-cosine soft-edge widths, Å.

    Returns
    -------
    np.ndarray
        float32 [n, n, n] in [0, 1].
    """
    from scipy import ndimage

    n = volume.shape[0]
    s2 = frequency_radius(n) ** 2 / (n * voxel_size) ** 2
    gauss = np.exp(-np.log(2.0) * s2 * lowpass**2).astype(np.float32)
    smooth = irfft3(rfft3(volume) * gauss, n)
    binary = smooth > threshold * smooth.max()
    distance = ndimage.distance_transform_edt(~binary) * voxel_size  # Å from the binary region
    ramp = np.clip((distance - extend) / max(edge, 1e-6), 0.0, 1.0)
    mask = 0.5 * (1.0 + np.cos(np.pi * ramp))
    return mask.astype(np.float32)


def simulate_case(settings: SimulationSettings | None = None) -> SimulatedCase:
    """Build the truth, two independent preferred-orientation half-maps and a soft mask.

    Parameters
    ----------
    settings : SimulationSettings, optional
        Defaults: box 64, 2 Å, 10 000 particles per half, 90 % within 15° of z, SNR 0.004.

    Returns
    -------
    SimulatedCase
    """
    settings = settings or SimulationSettings()
    n = settings.box
    truth_seq, seq1, seq2 = np.random.SeedSequence(settings.seed).spawn(3)
    truth = phantom(n, settings.voxel_size, truth_seq, settings.b_factor)
    # What the particle images carry: the truth times the imaging envelope.
    s2 = frequency_radius(n) ** 2 / (n * settings.voxel_size) ** 2
    spectrum = rfft3(truth) * np.exp(-settings.envelope_b * s2 / 4.0).astype(np.float32)
    sigma2 = _noise_power(spectrum, n, settings.snr)
    model = settings.orientation
    halves, weights, directions = [], [], []
    for seq in (seq1, seq2):
        rng = np.random.default_rng(seq)
        dirs, particles = sample_views(model, rng)
        w = sampling_weights(dirs, n, particles, rng)
        halves.append(reconstruct_half(spectrum, w, sigma2, rng))
        weights.append(w)
        directions.append(dirs.astype(np.float32))
    mask = soft_mask(0.5 * (halves[0] + halves[1]), settings.voxel_size)
    return SimulatedCase(
        truth=truth,
        half1=halves[0],
        half2=halves[1],
        mask=mask,
        voxel_size=float(settings.voxel_size),
        weights=(weights[0], weights[1]),
        directions=(directions[0], directions[1]),
        noise_power=float(sigma2),
        settings=settings,
    )


def radial_power(volume: np.ndarray) -> np.ndarray:
    """Mean |F|² per integer Fourier shell of a cubic map (diagnostic); shape [n//2+1]."""
    return radial_average(np.abs(rfft3(volume)) ** 2, volume.shape[0])
