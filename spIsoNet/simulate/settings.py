"""What defines a simulated case: the orientation model, the simulation settings, the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["OrientationModel", "SimulatedCase", "SimulationSettings"]


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
        """Reject impossible values (one line naming the field)."""
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
        """Reject impossible values (one line naming the field)."""
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
