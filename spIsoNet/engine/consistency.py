"""Data consistency: keep what the input half-maps measured well (the no-harm step).

The network's output replaces the input only where it is the better estimate of the truth. For
every Fourier component ``k`` of half ``i`` the corrected map is::

    out_i(k) = w_i(k) · half_i(k) + (1 − w_i(k)) · net_i(k)

How ``w`` is chosen (two half-maps, the default noise2noise mode). For any map ``x`` whose errors
are independent of the other half's noise, ``corr(x, half_j) = corr(x, truth) · corr(truth,
half_j)`` within a set of Fourier components, and the second factor does not depend on ``x``.
So the blend that correlates best with the other half ``j`` is the blend that correlates best
with the truth, and it can be found from the data alone, for correlated errors of network and
input too (the network's output is a function of the same half). The components are pooled into
groups of one Fourier shell and one direction cell (:func:`direction_groups`: fixed by geometry,
about :data:`GROUP_SIZE` components each, low shells pooled in runs of :data:`POOLED_SHELLS`), and
the two halves are pooled (they have the same statistics), so each estimate rests on hundreds of
components where a per-cone estimate would be noise (a 20° cone at shell 5 holds a few dozen).
Per group the weight is the value of :data:`W_GRID` that maximises a lower confidence bound of
the blend's advantage over the network's output, ``corr(w·half_i + (1 − w)·net_i, half_j)`` less
:data:`MARGIN` standard errors of its difference from ``corr(net_i, half_j)``, from six sums over
the group's components (:func:`group_weights`). The network is the default because agreement
with the other half cannot confirm what it fills in: both halves miss the same views, so
components they agree on can be wrong in the same way, and a correct fill-in barely correlates
with the other half (measured on the quality benchmark, docs/benchmarks.md: with the input as
the default the step kept +3.5 % of a network's +30.6 % worst-direction gain on one case).
Where the input is measurably better (a noisy, blurred or wrong output where the data are good)
the gap is many standard errors and the input is kept, which protects the best direction and
the global resolution whatever the training budget (tests: noisy, blurred and empty
"networks", isotropic data).
Exact ties (an output proportional to the input within the group), outputs with almost no power
in a group (:data:`MIN_POWER`) and groups too small to estimate (:data:`MIN_GROUP`) keep the
input.

Beyond ``limit_res`` the input is taken exactly (``w = 1``), as the recombination intends (its
spectrum matching and rescaling leave the recombined map slightly off there).

In the default (noise2noise) mode one network was trained on both halves, so ``net_i`` may hold
a little of ``half_j``'s noise and the estimate can be slightly optimistic for the network. With
a single map there is no second half to measure the network against, and with ``independent``
the other half must not be used (gold-standard halves): the weight is then ``w = clip(F, 0, 1)``
from the FSC3D the training used (given or computed), which keeps what the data measured well
(F → 1) and hands what they did not (F → 0) to the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ConsistencyReport", "group_weights", "keep_measured", "measured_weight"]

#: components per group of one weight (shell × direction cell, :func:`direction_groups`)
GROUP_SIZE = 64
#: low shells that hold too few components for more than one cell per cube face are pooled in
#: runs of this many shells (per face), so that their weights are not decided by noise
POOLED_SHELLS = 3
#: candidate input weights (steps of 0.025)
W_GRID = np.linspace(0.0, 1.0, 41)
#: standard errors by which the input (or a blend leaning on it) must beat the network's
#: correlation with the other half to be kept: larger keeps more of the network's fill-in, and
#: 3 let a noisy output make one direction of isotropic data 2.2 % worse (tests; the quality
#: benchmark's choice in docs/benchmarks.md)
MARGIN = 2.0
#: blends whose bound is within this fraction of the best count as equal (rounding: an output
#: proportional to the input within the group); the one with the most input is taken
PLATEAU = 1e-9
#: groups where the network's output has less than this fraction of the input's power keep
#: the input: a blend with such an output is the input scaled down, which correlates like the
#: input but would weaken that direction cell against the rest of its shell
MIN_POWER = 0.05
#: groups with fewer rfft components than this keep the input (too few for a stable estimate)
MIN_GROUP = 32


@dataclass(frozen=True)
class ConsistencyReport:
    """How much of each corrected half came from the network (for the log and the report).

    Attributes
    ----------
    network_fraction
        Per half, the mean of ``1 − w`` over the Fourier components inside ``limit_res``
        (0: the input unchanged, 1: the network output everywhere).
    kept_fraction
        Per half, the fraction of those components where the input was kept as it is
        (``w = 1``).
    """

    network_fraction: tuple[float, ...]
    kept_fraction: tuple[float, ...]


def measured_weight(fsc_halves: np.ndarray) -> np.ndarray:
    """Input weight ``w = clip(F, 0, 1)`` from an FSC3D (single map or ``independent``).

    Parameters
    ----------
    fsc_halves
        ``F``, the FSC3D of the two input halves, any layout (float, [...]).

    Returns
    -------
    numpy.ndarray
        float32, same shape, in [0, 1].
    """
    return np.clip(np.asarray(fsc_halves, dtype=np.float32), 0.0, 1.0)


def group_weights(
    pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    groups: np.ndarray,
    n_groups: int,
    multiplicity: np.ndarray | None = None,
) -> np.ndarray:
    """Per group, the input weight ``w`` whose blend correlates best with the other half.

    For ``x_w = w·half + (1 − w)·network`` the correlation with ``other`` over a group is
    ``(w·A + (1 − w)·B) / sqrt((w²·P + 2w(1 − w)·C + (1 − w)²·Q) · R)`` with
    ``A = Σ Re(half·other*)``, ``B = Σ Re(network·other*)``, ``P = Σ |half|²``,
    ``Q = Σ |network|²``, ``C = Σ Re(half·network*)`` (``R = Σ |other|²`` does not depend on
    ``w``); it is evaluated on :data:`W_GRID` and maximised less :data:`MARGIN` standard
    errors of its difference from the network's (a lower confidence bound), so the input
    enters only where it clearly beats the network's output (``w = 0``). The sums run over the
    components of the group in every given triple: the two halves have the same statistics, so
    pooling them halves the variance of the estimate.

    Parameters
    ----------
    pairs
        ``(half, network, other)`` triples of spectra (complex, one layout, e.g. rfft
        ``[n, n, n//2 + 1]``): an input half, the network's output for it, the other half.
    groups
        int, same shape: group of each component in ``0 … n_groups − 1``, or −1 (not used).
    n_groups
        Number of groups.
    multiplicity
        Weight of each component in the sums (Hermitian multiplicity of an rfft layout).

    Returns
    -------
    numpy.ndarray
        float64 ``[n_groups]`` in [0, 1]: 0 (the network) unless the input clearly beats it; 1
        for exact ties, outputs with less than :data:`MIN_POWER` of the input's power and
        groups with fewer than :data:`MIN_GROUP` components.
    """
    used = groups.ravel() >= 0
    index = groups.ravel()[used]
    weights = None if multiplicity is None else np.broadcast_to(multiplicity, groups.shape)
    weights = np.ones(index.shape) if weights is None else weights.ravel()[used]

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=values * weights, minlength=n_groups)

    sums = np.zeros((6, n_groups))
    for half, network, other in pairs:
        h, x, o = (np.asarray(a).ravel()[used] for a in (half, network, other))
        sums += [
            total((h * o.conj()).real),
            total((x * o.conj()).real),
            total(np.abs(h) ** 2),
            total(np.abs(x) ** 2),
            total((h * x.conj()).real),
            total(np.abs(o) ** 2),
        ]
    cross_half, cross_net, power_half, power_net, half_net, power_other = sums
    w = W_GRID[:, None]
    numerator = w * cross_half + (1.0 - w) * cross_net
    power = w * w * power_half + 2.0 * w * (1.0 - w) * half_net + (1.0 - w) ** 2 * power_net
    norm = np.sqrt(np.maximum(power, 1e-30))
    score = numerator / norm  # corr(blend, other) · sqrt(R)
    # Taken is the blend with the best lower confidence bound of its advantage over the
    # network's output, not the best estimate: the estimate of corr(blend, other) −
    # corr(network, other) over N components scatters by about |blend/|blend| −
    # network/|network|| / sqrt(N), so the input (or a blend leaning on it) must beat the
    # network by MARGIN such errors to be kept (why the network is the default: module
    # docstring).
    count = len(pairs) * total(np.ones(index.shape))
    similarity = (w * half_net + (1.0 - w) * power_net) / (
        norm * np.sqrt(np.maximum(power_net, 1e-30))
    )
    spread = np.sqrt(np.maximum(2.0 - 2.0 * similarity, 0.0) / np.maximum(count, 1.0))
    bound = score - MARGIN * spread * np.sqrt(np.maximum(power_other, 0.0))
    # Exact ties (to rounding) go to the input. A blend with an output that has almost no power
    # in the group is the input scaled down: it correlates like the input but would weaken that
    # direction cell against the rest of its shell, so such groups keep the input (MIN_POWER).
    top = bound.max(axis=0)
    near = bound >= top - PLATEAU * np.abs(top)
    last = len(W_GRID) - 1
    best = W_GRID[last - np.argmax(near[::-1], axis=0)]
    empty = power_net < MIN_POWER * power_half
    tiny = np.bincount(index, minlength=n_groups) < MIN_GROUP
    best[empty | tiny] = 1.0
    return best


def _rfft_layout(centred: np.ndarray) -> np.ndarray:
    """Centred ``[n, n, n]`` FSC3D volume (zero frequency at ``n//2``) → rfft layout."""
    n = centred.shape[0]
    return np.fft.ifftshift(centred)[:, :, : n // 2 + 1]


def _blend(
    half_spectrum: np.ndarray, network_spectrum: np.ndarray, weight_rfft: np.ndarray, n: int
) -> np.ndarray:
    from spIsoNet.fourier import irfft3

    spectrum = weight_rfft * half_spectrum + (1.0 - weight_rfft) * network_spectrum
    return np.asarray(irfft3(spectrum, n), dtype=np.float32)


def _in_band(n: int, voxel_size: float, limit_res: float) -> np.ndarray:
    """Boolean rfft-layout mask of the components with resolution coarser than ``limit_res``."""
    from spIsoNet.fourier import frequency_radius

    return frequency_radius(n, True, False) <= n * voxel_size / limit_res


def direction_groups(n: int, band: np.ndarray) -> tuple[np.ndarray, int]:
    """Group the rfft components of ``band`` by Fourier shell and direction cell.

    Directions are binned on the cube-sphere grid of :func:`spIsoNet.fsc3d.directions.
    face_coordinates` (3 faces of ``g × g`` equal-angle cells; ``k`` and ``−k`` share a cell),
    with ``g`` per shell chosen so that a cell holds about :data:`GROUP_SIZE` components:
    ``g = max(1, floor(sqrt(2π s² / (3 · GROUP_SIZE))))`` (the half-space holds ~2πs²
    components at shell ``s``). Where ``g = 1`` (the low shells), runs of
    :data:`POOLED_SHELLS` shells share the 3 face cells. The grouping does not look at the data,
    so a group's sums are unbiased estimates (grouping by a measured FSC would select
    low-correlation components into the low bands).

    Parameters
    ----------
    n
        Box edge (voxels).
    band
        bool rfft layout ``[n, n, n//2 + 1]``: the components to group.

    Returns
    -------
    (groups, n_groups)
        int64 rfft layout, the group of each component of ``band`` (−1 elsewhere and at the
        origin), and the number of groups.
    """
    from spIsoNet.fourier import shell_index
    from spIsoNet.fsc3d.directions import face_coordinates

    shells = shell_index(n, True, False).astype(np.int64)
    band = band & (shells > 0)
    max_shell = int(shells[band].max()) if band.any() else 0
    radii = np.arange(max_shell + 1, dtype=np.float64)
    cells_per_face = np.maximum(1, np.floor(np.sqrt(2 * np.pi * radii**2 / (3 * GROUP_SIZE))))
    cells_per_face = cells_per_face.astype(np.int64)
    # shells too small for more than the 3 face cells are pooled in runs of POOLED_SHELLS
    pooled = cells_per_face == 1
    cells = np.where(pooled, 0, 3 * cells_per_face**2)
    offsets = np.concatenate([[0], np.cumsum(cells)])
    n_split = int(offsets[-1])
    k = np.rint(np.fft.fftfreq(n) * n).astype(np.int64)
    kz, ky, kx = np.meshgrid(k, k, np.arange(n // 2 + 1), indexing="ij")
    shell = shells[band]
    g = cells_per_face[shell]
    face, alpha, beta = face_coordinates(kz[band], ky[band], kx[band])
    face = face.astype(np.int64)
    quarter = np.pi / 4
    i = np.clip(((alpha + quarter) / (2 * quarter) * g).astype(np.int64), 0, g - 1)
    j = np.clip(((beta + quarter) / (2 * quarter) * g).astype(np.int64), 0, g - 1)
    split = offsets[shell] + (face * g + i) * g + j
    run = (shell - 1) // POOLED_SHELLS
    groups = np.full(band.shape, -1, dtype=np.int64)
    groups[band] = np.where(pooled[shell], n_split + 3 * run + face, split)
    n_runs = (max_shell - 1) // POOLED_SHELLS + 1 if max_shell else 0
    return groups, n_split + 3 * n_runs


def _paired_weights(
    half_spectra: list[np.ndarray], network_spectra: list[np.ndarray], band: np.ndarray
) -> list[np.ndarray]:
    """Per-component input weights of both halves from shell × direction groups (rfft).

    ``half_spectra`` / ``network_spectra``: rfft spectra of the (masked) halves and of the
    network outputs for them.
    """
    from spIsoNet.fourier import rfft_multiplicity

    n = band.shape[0]
    groups, n_groups = direction_groups(n, band)
    pairs = [(half_spectra[i], network_spectra[i], half_spectra[1 - i]) for i in range(2)]
    per_group = group_weights(pairs, groups, n_groups, rfft_multiplicity(n))
    weight = np.ones(groups.shape, dtype=np.float32)
    used = groups >= 0
    weight[used] = per_group[groups[used]]
    weights = [weight, weight.copy()]
    return weights


def keep_measured(
    halves: list[np.ndarray],
    corrected: list[np.ndarray],
    voxel_size: float,
    limit_res: float,
    *,
    mask: np.ndarray | None = None,
    fsc3d_volume: np.ndarray | None = None,
    independent: bool = False,
    n_threads: int | None = None,
) -> tuple[list[np.ndarray], ConsistencyReport]:
    """Blend each corrected half with its input by how well each Fourier component is measured.

    Parameters
    ----------
    halves
        One or two input half-maps, float32 ``[n, n, n]`` (the maps before correction).
    corrected
        The recombined network outputs, one per half, same shape and scale.
    voxel_size
        Å per voxel.
    limit_res
        Å; the band the network worked in: beyond it the input is taken as it is.
    mask
        Soft mask ``[n, n, n]`` applied to the maps whose correlations choose the weights (the
        user's solvent mask); the blend itself applies to the unmasked maps.
    fsc3d_volume
        Centred FSC3D of the halves (the one training used); needed with one half or
        ``independent``.
    independent
        Gold-standard halves: corrected half ``i`` must not depend on half ``j`` beyond the
        FSC3D both were trained with, so the other half is not used to choose the weights:
        ``w = clip(F, 0, 1)`` from ``fsc3d_volume``.
    n_threads
        FFT threads.

    Returns
    -------
    (maps, report)
        The blended maps (float32 ``[n, n, n]``) and a :class:`ConsistencyReport`.
    """
    from spIsoNet.fourier import fft_threads, rfft3

    n = halves[0].shape[0]
    band = _in_band(n, voxel_size, limit_res)
    with fft_threads(n_threads):
        # the spectra the blend needs; without a mask the weights are chosen on the same ones
        spectra = [rfft3(h) for h in halves], [rfft3(c) for c in corrected]
        if len(halves) == 2 and not independent:
            chosen_on = spectra
            if mask is not None:
                chosen_on = [rfft3(h * mask) for h in halves], [rfft3(c * mask) for c in corrected]
            weights = _paired_weights(*chosen_on, band)
        else:
            if fsc3d_volume is None:
                raise ValueError("the consistency weight needs the FSC3D volume here")
            weight = measured_weight(_rfft_layout(np.asarray(fsc3d_volume)))
            weights = [weight.copy() for _ in halves]
        for weight in weights:
            weight[~band] = 1.0  # beyond the band: the input exactly (the recombination's intent)
        maps = [_blend(h, c, w, n) for h, c, w in zip(*spectra, weights)]
    report = ConsistencyReport(
        network_fraction=tuple(float(np.mean(1.0 - w[band])) for w in weights),
        kept_fraction=tuple(float(np.mean(w[band] >= 1.0)) for w in weights),
    )
    return maps, report
