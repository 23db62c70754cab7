"""Data consistency: keep what the input half-maps measured well (the no-harm step).

The network's output replaces the input only where it is the better estimate of the truth. For
every Fourier component ``k`` of half ``i`` the corrected map is::

    out_i(k) = w_i(k) · half_i(k) + (1 − w_i(k)) · net_i(k)

with ``w_i`` from two conical FSC volumes (:func:`spIsoNet.fsc3d.compute_fsc3d`, the FSC of each
Fourier voxel's own shell in a cone around its own direction):

* ``F = cFSC(half_1, half_2)``: the halves' agreement. With independent noise of equal power,
  the squared correlation of one half with the truth is ``ρ_in² = F``.
* ``G_i = cFSC(net_i, half_j)`` (``j`` the other half, whose noise ``net_i`` did not start from):
  the correlation of the network output with the truth is ``ρ_net = G_i / sqrt(F)``, because
  ``corr(x, half_j) = corr(x, truth) · corr(truth, half_j)`` for any ``x`` independent of
  ``half_j``'s noise.

With the signal-to-noise ratios ``s = ρ² / (1 − ρ²)`` the weight is ``w = min(1, s_in / s_net)``:
where the input is at least as good (``s_in ≥ s_net``) it is kept as it is (``w = 1``), so the
network cannot degrade a component the data measured better, which is what protects the best
direction and the global resolution whatever the training budget; the better the network is
than the data, the more of it is taken, and the poorly measured directions (``F ≈ 0``) go to the
network. (The network's output is a function of the same half, so its errors are correlated with
the input's: an SNR-weighted average, right for independent errors, would mix a worse network
into well measured components; ``min(1, s_in / s_net)`` takes nothing from it there.)

Beyond ``limit_res`` the input is taken exactly (``w = 1``), as the recombination intends (its
spectrum matching and rescaling leave the recombined map slightly off there).

In the default (noise2noise) mode one network was trained on both halves, so ``G`` can be
slightly optimistic where the consistency loss pulled ``net_i`` towards ``half_j``. With a single
map there is no second half to measure the network against, and with ``independent`` the other
half must not be used (gold-standard halves): the weight is then ``w = clip(F, 0, 1)`` from the
FSC3D the training used (given or computed), which keeps what the data measured well (F → 1)
and hands what they did not (F → 0) to the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ConsistencyReport", "input_weight", "keep_measured"]

_EPS = 1e-3  # correlations are clipped to [_EPS, 1 - _EPS] before SNRs are formed
#: cone half-angle (degrees) of F and G. A conical FSC's statistical noise is ~1/sqrt(voxels in
#: the cone), and a 20° cone holds ~4x the voxels of a 10° one: with 10° cones, noise-level
#: values of G where F is small handed 17 % of the band to a deliberately blurred "network"
#: (global resolution 6 % worse than the input), with 20° cones 10 % (2 % worse). Wider cones
#: (30-45°) mix well and poorly measured directions and hide where the network does better.
CONE_ANGLE = 20.0


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


def input_weight(fsc_halves: np.ndarray, fsc_network: np.ndarray | None) -> np.ndarray:
    """Per-component weight ``w`` of the input half (``1 − w`` goes to the network output).

    Parameters
    ----------
    fsc_halves
        ``F``, conical FSC of the two input halves, any layout (float, [...]).
    fsc_network
        ``G``, conical FSC of the network output with the other half, same layout; None (single
        map): ``w = clip(F, 0, 1)``.

    Returns
    -------
    numpy.ndarray
        float32, same shape, in [0, 1].
    """
    if fsc_network is None:
        return np.clip(np.asarray(fsc_halves, dtype=np.float32), 0.0, 1.0)
    f = np.clip(np.asarray(fsc_halves, dtype=np.float64), _EPS, 1.0 - _EPS)
    g = np.maximum(np.asarray(fsc_network, dtype=np.float64), 0.0)
    rho_net2 = np.clip(g * g / f, _EPS, 1.0 - _EPS)
    snr_in = f / (1.0 - f)
    snr_net = rho_net2 / (1.0 - rho_net2)
    weight = np.minimum(1.0, snr_in / snr_net)
    return weight.astype(np.float32)


def conical_fsc(
    a: np.ndarray,
    b: np.ndarray,
    voxel_size: float,
    limit_res: float,
    *,
    mask: np.ndarray | None = None,
    n_threads: int | None = None,
) -> np.ndarray:
    """Conical FSC volume of ``a`` and ``b`` (cones of :data:`CONE_ANGLE`) up to ``limit_res``.

    Returns
    -------
    numpy.ndarray
        float32, rfft layout ``[n, n, n//2 + 1]``, zero beyond the shell of ``limit_res``.
    """
    from spIsoNet.fsc3d import ConicalFSC

    engine = ConicalFSC(a, b, mask=mask, n_threads=n_threads)
    _, max_shell = engine.limit_shell(voxel_size, limit_res)
    return _rfft_layout(engine.volume(CONE_ANGLE, max_shell))


def _rfft_layout(centred: np.ndarray) -> np.ndarray:
    """Centred ``[n, n, n]`` FSC3D volume (zero frequency at ``n//2``) → rfft layout."""
    n = centred.shape[0]
    return np.fft.ifftshift(centred)[:, :, : n // 2 + 1]


def _blend(half: np.ndarray, network: np.ndarray, weight_rfft: np.ndarray) -> np.ndarray:
    from spIsoNet.fourier import irfft3, rfft3

    spectrum = weight_rfft * rfft3(half) + (1.0 - weight_rfft) * rfft3(network)
    return np.asarray(irfft3(spectrum, half.shape[0]), dtype=np.float32)


def _in_band(n: int, voxel_size: float, limit_res: float) -> np.ndarray:
    """Boolean rfft-layout mask of the components with resolution coarser than ``limit_res``."""
    from spIsoNet.fourier import frequency_radius

    return frequency_radius(n, True, False) <= n * voxel_size / limit_res


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
        Soft mask ``[n, n, n]`` applied before every conical FSC (the user's solvent mask).
    fsc3d_volume
        Centred FSC3D of the halves (the one training used); needed with one half or
        ``independent``.
    independent
        Gold-standard halves: corrected half ``i`` must not depend on half ``j`` beyond the
        FSC3D both were trained with, so ``G`` (which compares with the other half) is not used
        and ``w = clip(F, 0, 1)`` from ``fsc3d_volume``.
    n_threads
        FFT threads.

    Returns
    -------
    (maps, report)
        The blended maps (float32 ``[n, n, n]``) and a :class:`ConsistencyReport`.
    """
    n = halves[0].shape[0]

    def cfsc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return conical_fsc(a, b, voxel_size, limit_res, mask=mask, n_threads=n_threads)

    if len(halves) == 2 and not independent:
        f = cfsc(halves[0], halves[1])
        weights = [
            input_weight(f, cfsc(corrected[0], halves[1])),
            input_weight(f, cfsc(corrected[1], halves[0])),
        ]
    else:
        if fsc3d_volume is None:
            raise ValueError("the consistency weight needs the FSC3D volume here")
        weight = input_weight(_rfft_layout(np.asarray(fsc3d_volume)), None)
        weights = [weight.copy() for _ in halves]
    band = _in_band(n, voxel_size, limit_res)
    for weight in weights:
        weight[~band] = 1.0  # beyond the band: the input exactly (the recombination's intent)
    maps = [_blend(h, c, w) for h, c, w in zip(halves, corrected, weights)]
    report = ConsistencyReport(
        network_fraction=tuple(float(np.mean(1.0 - w[band])) for w in weights),
        kept_fraction=tuple(float(np.mean(w[band] >= 1.0)) for w in weights),
    )
    return maps, report
