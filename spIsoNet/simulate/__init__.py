"""Simulated preferred-orientation cryo-EM data with a known ground truth.

What is simulated, exactly
--------------------------
1. **Truth** (:func:`phantom`, module ``phantom``): a protein-like pseudo-atomic model generated in
   code from a seed (no shipped data). A compact, non-symmetric envelope (union of three random
   ellipsoids) is filled with α-helix-like rods (pseudo-Cα on a 2.3 Å-radius helix, 1.5 Å rise,
   100° per residue) and small β-sheet-like slabs (strands 4.8 Å apart, 3.3 Å rise), joined by
   loops; every residue carries backbone and side-chain pseudo-atoms. Atoms are spread onto the
   grid by trilinear splatting (the splat's sinc² transfer is divided out), then blurred by an
   isotropic B-factor (Fourier factor exp(-B s²/4)). The result has a Guinier plateau and
   Wilson-like fall-off of radial power, secondary-structure texture and a solvent region.
2. **Orientations** (:class:`OrientationModel`, module ``particles``): per half-map an independent
   set of particles: ``fraction_preferred`` of them view along directions uniform in a cone of
   half-angle ``cone_angle`` around ``axis`` (either pole), the rest uniform on the sphere. The
   particles are spread over ``n_views`` distinct directions drawn from that distribution (like
   poses on a discrete angular grid; :func:`sample_views` gives the uniform part most of the
   views).
3. **Fourier-slice sampling** (:func:`sampling_weights`, module ``particles``): each view samples
   the central slice perpendicular to its direction: the image's unit-spaced Fourier pixels within
   the Nyquist circle (random in-plane rotation) are inserted with trilinear weights t, so W(k) =
   Σ_views m·t, m = particles per view. Vectorised over blocks of views (torch ``index_add_``).
4. **Half-maps** (:func:`reconstruct_half`, module ``reconstruct``): the images carry the truth
   times an imaging envelope E(k) = exp(-B_env s²/4) (CTF envelopes, drift, alignment errors; no
   CTF oscillations). Back-projected numerator N(k) = W(k)·E·F(k) + σ·sqrt(W(k))·ξ(k), ξ the
   Fourier transform of white Gaussian noise (Hermitian, unit variance, independent between
   voxels): W(k) independent noisy samples of E·F(k), the information content of the particles'
   noisy central slices. Then a Wiener (RELION-like, T = 1) reconstruction F̂ = N / (W +
   σ²/τ²(|k|)), τ² the per-shell power of E·F (an oracle prior; RELION estimates it from the
   half-map FSC). σ² (noise power per Fourier sample) follows from the per-image ``snr``:
   orientation-averaged variance of a projection over the whole box / pixel noise variance. Not
   simulated: CTF oscillations, alignment errors, heterogeneity; so the resolution is set by
   particle number, SNR, envelope and orientation distribution only.
5. **Mask** (:func:`soft_mask`, module ``mask``): from the average of the two half-maps (what a
   user has), low-passed by a Gaussian to ~15 Å, thresholded, extended and given a raised-cosine
   soft edge.

All randomness comes from ``numpy.random.SeedSequence(seed)``: the truth depends only on the
seed and the grid, half 1 and half 2 use separate child streams (independent particles and noise).
Arrays are float32 ``[z, y, x]``; directions are unit vectors in (z, y, x) order. The settings
and the result live in ``settings``; :func:`simulate_case` (module ``case``) runs the stages.
"""

from spIsoNet.simulate.case import ViewSampler, radial_power, simulate_case, simulate_halves
from spIsoNet.simulate.mask import soft_mask
from spIsoNet.simulate.particles import sample_view_directions, sample_views, sampling_weights
from spIsoNet.simulate.phantom import phantom, pseudo_atoms
from spIsoNet.simulate.reconstruct import reconstruct_half
from spIsoNet.simulate.settings import OrientationModel, SimulatedCase, SimulationSettings

__all__ = [
    "OrientationModel",
    "SimulatedCase",
    "SimulationSettings",
    "phantom",
    "pseudo_atoms",
    "radial_power",
    "reconstruct_half",
    "sample_view_directions",
    "sample_views",
    "sampling_weights",
    "simulate_case",
    "simulate_halves",
    "ViewSampler",
    "soft_mask",
]
