"""Vectorised Fourier toolkit for cubic maps.

Conventions
-----------
* Maps are float32 arrays ``[z, y, x]`` of edge ``n`` voxels; voxel size in Å.
* Spectra are in the ``rfftn`` half-space layout ``[n, n, n//2 + 1]``, **not** centred (DC at
  ``[0, 0, 0]``), as returned by :func:`rfft3`. A Fourier index vector ``k`` has spatial
  frequency ``|k| / (n · voxel_size)`` 1/Å, i.e. resolution ``n · voxel_size / |k|`` Å.
* Shell ``i`` holds the voxels with ``floor(|k| + 0.5) == i``; there are ``n//2 + 1`` shells up to
  Nyquist (corner voxels beyond Nyquist are ignored by shell statistics).
* Sums over the half space weight every voxel by its Hermitian multiplicity
  (:func:`rfft_multiplicity`), so they equal sums over the full spectrum.

FFTs (float32 in, complex64 out) run through ``scipy.fft`` or ``torch.fft`` on the CPU, chosen
per box by :func:`fft_backend` (the one home of that policy); threads from :func:`fft_threads`.
No function here loops over voxels or shells in Python (shell statistics use ``np.bincount``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FSCReport",
    "Resolution",
    "apply_radial_filter",
    "available_cores",
    "combine_maps",
    "fft_backend",
    "fft_threads",
    "fourier_resize",
    "fsc_curve",
    "fsc_from_spectra",
    "fsc_weighting",
    "frequency_axes",
    "frequency_radius",
    "irfft3",
    "lowpass",
    "lowpass_profile",
    "masked_fsc_corrected",
    "radial_average",
    "resolution_at",
    "resolution_to_shell",
    "rfft3",
    "rfft_multiplicity",
    "shell_index",
    "shell_sums",
    "shell_to_resolution",
    "spectrum_matching_gain",
    "whiten",
    "window_spectrum",
]


# ----------------------------------------------------------------------------------------------
# FFTs
#: boxes from this edge use torch's FFT *when torch is already imported* (the engine runs):
#: there it is 2-3x faster than pocketfft on 2 cores (192³: 0.011 vs 0.038 s, 256³: 0.056 vs
#: 0.093 s), but importing torch only for FFTs costs ~0.9 s and ~200 MB, more than any saving
#: of the few FFTs of a map tool. Below this edge scipy.fft is faster anyway (96³: 0.003 vs
#: 0.028 s). Measured 2026-12-03, benchmarks/bench_fourier.py.
TORCH_FFT_MIN_BOX = 192
_FFT_THREADS: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "spisonet_fft_threads", default=None
)


#: The half-map ("gold-standard") FSC criterion: resolution where the FSC of two independent
#: half-maps falls to 0.143 (Rosenthal & Henderson 2003). Also the default limit of the FSC3D
#: and of the correction band (``spIsoNet.engine.plan.DEFAULT_LIMIT_FSC``).
GOLD_STANDARD_FSC = 0.143


def available_cores() -> int:
    """CPU cores this process may run on (affinity mask; ``os.cpu_count()`` where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def fft_threads(n_threads: int | None):
    """Threads used by :func:`rfft3` / :func:`irfft3` inside the block (None: all available)."""
    token = _FFT_THREADS.set(None if not n_threads else max(1, int(n_threads)))
    try:
        yield
    finally:
        _FFT_THREADS.reset(token)


def fft_backend(n: int) -> str:
    """FFT library for an ``n³`` box: ``"torch"`` or ``"scipy"`` (see :data:`TORCH_FFT_MIN_BOX`)."""
    return "torch" if n >= TORCH_FFT_MIN_BOX and "torch" in sys.modules else "scipy"


def _threads() -> int:
    return _FFT_THREADS.get() or available_cores()


def rfft3(volume: np.ndarray, *, double: bool = False) -> np.ndarray:
    """Real-to-complex FFT of a 3D map.

    Parameters
    ----------
    volume
        Array ``[n, n, n]`` (any real dtype; computed in float32, or float64 with ``double``).
    double
        Compute in float64 (complex128 out).

    Returns
    -------
    numpy.ndarray
        complex64 (complex128 with ``double``) ``[n, n, n//2 + 1]``, not centred, unnormalised
        forward transform.
    """
    dtype = np.float64 if double else np.float32
    volume = np.ascontiguousarray(volume, dtype=dtype)
    if fft_backend(volume.shape[0]) == "torch":
        import torch

        return torch.fft.rfftn(torch.from_numpy(volume), dim=(-3, -2, -1)).numpy()
    import scipy.fft  # here, not at import: the plugin's plain path uses this module FFT-free

    return scipy.fft.rfftn(volume, axes=(-3, -2, -1), workers=_threads())


def irfft3(spectrum: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`rfft3`: complex ``[n, n, n//2 + 1]`` → float32 ``[n, n, n]``."""
    spectrum = np.ascontiguousarray(spectrum, dtype=np.complex64)
    if fft_backend(n) == "torch":
        import torch

        tensor = torch.from_numpy(spectrum)
        return torch.fft.irfftn(tensor, s=(n, n, n), dim=(-3, -2, -1)).numpy()
    import scipy.fft

    out = scipy.fft.irfftn(spectrum, s=(n, n, n), axes=(-3, -2, -1), workers=_threads())
    return out.astype(np.float32, copy=False)


def window_spectrum(array: np.ndarray, grid_from: int, grid_to: int, big_r: int) -> np.ndarray:
    """Copy the frequencies |kz|,|ky| < R, kx < R of a half (rfft) spectrum between grid sizes.

    ``array`` has shape ``(g, g, g//2+1)`` for ``g = grid_from``; the result has the shape for
    ``grid_to`` and holds the same signed frequencies (zeros elsewhere).
    """
    n_pos = min(big_r, grid_from // 2 + 1, grid_to // 2 + 1)  # k = 0 … R−1 stored at k
    n_neg = min(big_r - 1, (grid_from - 1) // 2, (grid_to - 1) // 2)  # k < 0 stored at k + grid
    nx = min(big_r, grid_from // 2 + 1, grid_to // 2 + 1)
    out = np.zeros((grid_to, grid_to, grid_to // 2 + 1), dtype=array.dtype)
    # (source, destination) slices of the non-negative and the negative frequencies
    parts = [(slice(0, n_pos), slice(0, n_pos))]
    if n_neg > 0:
        parts.append((slice(grid_from - n_neg, grid_from), slice(grid_to - n_neg, grid_to)))
    for src_z, dst_z in parts:
        for src_y, dst_y in parts:
            out[dst_z, dst_y, :nx] = array[src_z, src_y, :nx]
    return out


def fourier_resize(volume: np.ndarray, size: int) -> np.ndarray:
    """Resample a cubic map to ``size``³ voxels over the same field of view, in Fourier space.

    Cropping (``size < n``) keeps the frequencies ``|k| < size/2`` per axis, so the map is
    band-limited to the new Nyquist and its voxel size grows by ``n / size``; padding
    (``size > n``) adds zeros beyond the old Nyquist, so ``fourier_resize(fourier_resize(v, m),
    n)`` is ``v`` low-passed to a cube of half-edge ``m/2``. The Nyquist planes of the smaller
    grid are dropped (a real map's Nyquist component has no sign to share between ±), and
    values keep their real-space scale (the mean is preserved).

    Parameters
    ----------
    volume
        Real map ``[n, n, n]``.
    size
        New edge in voxels, even (or equal to ``n``).

    Returns
    -------
    numpy.ndarray
        float32 ``[size, size, size]``.
    """
    n = volume.shape[0]
    if size == n:
        return np.asarray(volume, dtype=np.float32)
    if size < 2 or size % 2:
        raise ValueError(f"fourier_resize: size {size} must be even and >= 2")
    # frequencies 0 … keep−1 and −(keep−1) … −1 on each axis
    out = window_spectrum(rfft3(volume), n, size, min(n, size) // 2)
    out *= (size / n) ** 3  # the unnormalised forward FFT scales with the voxel count
    return irfft3(out, size)


# ----------------------------------------------------------------------------------------------
# Frequency grids and shells
def _axis_frequencies(n: int, centered: bool) -> np.ndarray:
    if centered:
        return np.arange(n, dtype=np.float32) - n // 2
    return (np.fft.fftfreq(n) * n).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _radius_cached(n: int, rfft: bool, centered: bool) -> np.ndarray:
    if rfft and centered:
        raise ValueError("the rfft half-space layout is never centred")
    kz = _axis_frequencies(n, centered)
    ky = kz
    kx = np.arange(n // 2 + 1, dtype=np.float32) if rfft else kz
    r2 = kz[:, None, None] ** 2 + ky[None, :, None] ** 2 + kx[None, None, :] ** 2
    radius = np.sqrt(r2, dtype=np.float32)
    radius.setflags(write=False)
    return radius


def frequency_axes(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer frequencies ``kz, ky, kx`` of the half-space layout, broadcastable to a spectrum.

    Parameters
    ----------
    n
        Box edge (voxels).

    Returns
    -------
    tuple of numpy.ndarray
        float32 ``[n, 1, 1]``, ``[1, n, 1]`` and ``[1, 1, n//2 + 1]`` (Fourier pixels, not
        centred), so that ``kz**2 + ky**2 + kx**2`` is ``frequency_radius(n)**2``.
    """
    kz = _axis_frequencies(n, centered=False)
    kx = np.arange(n // 2 + 1, dtype=np.float32)
    return kz[:, None, None], kz[None, :, None], kx[None, None, :]


def frequency_radius(n: int, rfft: bool = True, centered: bool = False) -> np.ndarray:
    """Radius ``|k|`` (Fourier pixels) of every voxel of an ``n³`` spectrum.

    Parameters
    ----------
    n
        Box edge (voxels), even or odd.
    rfft
        Half-space layout ``[n, n, n//2 + 1]`` (True) or full ``[n, n, n]``.
    centered
        Full layout only: zero frequency at index ``n//2`` on every axis (``fftshift`` order).

    Returns
    -------
    numpy.ndarray
        float32, read-only (cached; copy before modifying).
    """
    return _radius_cached(int(n), bool(rfft), bool(centered))


@functools.lru_cache(maxsize=2)
def _shell_cached(n: int, rfft: bool, centered: bool) -> np.ndarray:
    shells = np.floor(frequency_radius(n, rfft, centered) + 0.5).astype(np.int64)
    shells.setflags(write=False)
    return shells


def shell_index(n: int, rfft: bool = True, centered: bool = False) -> np.ndarray:
    """Integer shell ``floor(|k| + 0.5)`` of every voxel (layout as :func:`frequency_radius`).

    Returns
    -------
    numpy.ndarray
        int64, read-only (cached).
    """
    return _shell_cached(int(n), bool(rfft), bool(centered))


@functools.lru_cache(maxsize=8)
def rfft_multiplicity(n: int) -> np.ndarray:
    """Hermitian multiplicity of the half-space columns ``kx = 0 … n//2``.

    ``kx = 0`` (and ``kx = n/2`` for even ``n``) appear once in the full spectrum, every other
    column twice (``k`` and ``-k``). Shape ``[n//2 + 1]``, broadcasts over ``[z, y, x]``.
    """
    weights = np.full(n // 2 + 1, 2.0, dtype=np.float32)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    weights.setflags(write=False)
    return weights


def shell_sums(
    values: np.ndarray,
    shells: np.ndarray,
    n_shells: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Sum ``values · weights`` over shells with ``np.bincount``.

    Parameters
    ----------
    values
        Real or complex array, same shape as ``shells`` (or broadcastable with ``weights``).
    shells
        Integer shell of every element.
    n_shells
        Number of shells returned (shells ≥ ``n_shells`` are dropped).
    weights
        Optional multiplicative weights broadcastable to ``values``.

    Returns
    -------
    numpy.ndarray
        float64 (or complex128) ``[n_shells]``.
    """
    if weights is not None:
        values = values * weights
    flat_shells = np.broadcast_to(shells, np.shape(values)).ravel()
    if np.iscomplexobj(values):
        real = np.bincount(flat_shells, weights=np.real(values).ravel(), minlength=n_shells)
        imag = np.bincount(flat_shells, weights=np.imag(values).ravel(), minlength=n_shells)
        return (real + 1j * imag)[:n_shells]
    return np.bincount(flat_shells, weights=np.asarray(values).ravel(), minlength=n_shells)[
        :n_shells
    ]


def radial_average(spectrum_values: np.ndarray, n: int, n_shells: int | None = None) -> np.ndarray:
    """Hermitian-weighted mean of a half-space quantity per shell, ``[n_shells]`` float64.

    Parameters
    ----------
    spectrum_values
        Real array ``[n, n, n//2 + 1]`` (half-space layout).
    n
        Box edge (voxels).
    n_shells
        Shells returned; default ``n//2 + 1`` (up to Nyquist). Pass
        ``int(shell_index(n).max()) + 1`` to include the corner shells beyond Nyquist.

    Shells without voxels (never the case below Nyquist for ``n ≥ 2``) get 0.
    """
    n_shells = n // 2 + 1 if n_shells is None else int(n_shells)
    shells = shell_index(n)
    weights = rfft_multiplicity(n)
    totals = shell_sums(spectrum_values, shells, n_shells, weights)
    counts = shell_sums(np.ones(shells.shape, np.float32), shells, n_shells, weights)
    return np.divide(totals, counts, out=np.zeros_like(totals), where=counts > 0)


def shell_to_resolution(shell: float | np.ndarray, box: int, voxel_size: float):
    """Resolution (Å) of shell index ``shell`` (``inf`` for 0)."""
    shell = np.asarray(shell, dtype=np.float64)
    with np.errstate(divide="ignore"):
        res = np.where(shell > 0, box * voxel_size / np.where(shell > 0, shell, 1.0), np.inf)
    return float(res) if res.ndim == 0 else res


def resolution_to_shell(resolution: float, box: int, voxel_size: float) -> float:
    """Fractional shell index of ``resolution`` (Å): ``box · voxel_size / resolution``."""
    if not resolution > 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    return box * voxel_size / resolution


# ----------------------------------------------------------------------------------------------
# FSC and resolution
def fsc_from_spectra(spectrum1: np.ndarray, spectrum2: np.ndarray) -> np.ndarray:
    """Fourier shell correlation of two half-space spectra (from :func:`rfft3`).

    ``FSC(i) = Re Σ F1 F2* / sqrt(Σ |F1|² Σ |F2|²)`` over shell ``i``, Hermitian-weighted.

    Returns
    -------
    numpy.ndarray
        float64 ``[n//2 + 1]``; 0 where a shell has no power.
    """
    n = spectrum1.shape[0]
    n_shells = n // 2 + 1
    shells = shell_index(n)
    weights = rfft_multiplicity(n)
    cross = shell_sums(
        (spectrum1.real * spectrum2.real + spectrum1.imag * spectrum2.imag),
        shells,
        n_shells,
        weights,
    )
    power1 = shell_sums(spectrum1.real**2 + spectrum1.imag**2, shells, n_shells, weights)
    power2 = shell_sums(spectrum2.real**2 + spectrum2.imag**2, shells, n_shells, weights)
    denominator = np.sqrt(power1 * power2)
    return np.divide(cross, denominator, out=np.zeros_like(cross), where=denominator > 0)


def fsc_curve(map1: np.ndarray, map2: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """FSC between two maps ``[n, n, n]`` (each multiplied by ``mask`` first if given).

    Returns
    -------
    numpy.ndarray
        float64 ``[n//2 + 1]``, shell 0 = DC.
    """
    if mask is not None:
        map1 = map1 * mask
        map2 = map2 * mask
    return fsc_from_spectra(rfft3(map1), rfft3(map2))


@dataclass(frozen=True)
class Resolution:
    """Where an FSC curve crosses a threshold.

    Attributes
    ----------
    angstrom
        Resolution in Å (``2 · voxel_size`` when the curve never crosses).
    shell
        Fractional shell index of the crossing (linear interpolation between shells).
    crossed
        False when the curve stays above the threshold up to Nyquist.
    """

    angstrom: float
    shell: float
    crossed: bool


def resolution_at(
    fsc: np.ndarray, box: int, voxel_size: float, threshold: float = GOLD_STANDARD_FSC
) -> Resolution:
    """First crossing of ``threshold`` by ``fsc`` (shell 0 ignored), linearly interpolated.

    Parameters
    ----------
    fsc
        Per-shell values, shell 0 = DC.
    box, voxel_size
        Box edge (voxels) and voxel size (Å) that define shell frequencies.
    threshold
        e.g. 0.143 (gold standard) or 0.5.
    """
    values = np.asarray(fsc, dtype=np.float64)
    below = np.nonzero(values[1:] < threshold)[0]
    if below.size == 0:
        last = len(values) - 1
        return Resolution(shell_to_resolution(last, box, voxel_size), float(last), False)
    i = int(below[0]) + 1
    if i == 1:
        shell = 1.0
    else:
        upper, lower = values[i - 1], values[i]
        shell = (i - 1) + (upper - threshold) / (upper - lower)
    return Resolution(shell_to_resolution(shell, box, voxel_size), float(shell), True)


# ----------------------------------------------------------------------------------------------
# Radial filters
def _profile_on_radius(profile: np.ndarray, radius: np.ndarray, beyond: float) -> np.ndarray:
    profile = np.asarray(profile, dtype=np.float64)
    shells = np.arange(len(profile), dtype=np.float64)
    return np.interp(radius, shells, profile, right=beyond).astype(np.float32)


def apply_radial_filter(
    volume: np.ndarray,
    profile: np.ndarray,
    *,
    beyond: float | None = None,
    spectrum: np.ndarray | None = None,
    per_shell: bool = False,
) -> np.ndarray:
    """Multiply a map's spectrum by a radial profile.

    Parameters
    ----------
    volume
        Map ``[n, n, n]``.
    profile
        Filter value per shell index ``0 … len(profile) − 1``; linearly interpolated at the
        fractional radius ``|k|`` (or, with ``per_shell``, constant over each integer shell).
    beyond
        Value for radii past the last profile entry (default: the last entry).
    spectrum
        ``rfft3(volume)`` if already computed (avoids a second FFT).
    per_shell
        Use ``profile[shell_index]`` instead of interpolating: a per-shell gain computed from
        shell statistics then acts exactly on those shells (spectrum matching, whitening).

    Returns
    -------
    numpy.ndarray
        float32 ``[n, n, n]``.
    """
    n = volume.shape[0]
    if spectrum is None:
        spectrum = rfft3(volume)
    edge = float(profile[-1]) if beyond is None else float(beyond)
    if per_shell:
        filt = _per_shell_filter(np.append(np.asarray(profile, dtype=np.float64), edge), n)
    else:
        filt = _profile_on_radius(profile, frequency_radius(n), edge)
    return irfft3(spectrum * filt, n)


def lowpass_profile(n_shells: int, cutoff_shell: float, edge_width: float = 3.0) -> np.ndarray:
    """Raised-cosine low-pass profile: 1 up to ``cutoff − w/2``, 0 from ``cutoff + w/2``.

    The half-amplitude point sits at ``cutoff_shell`` (Fourier pixels); ``edge_width`` is the
    width of the cosine edge in Fourier pixels (0 gives a hard edge).
    """
    shells = np.arange(n_shells, dtype=np.float64)
    if edge_width <= 0:
        return (shells <= cutoff_shell).astype(np.float64)
    start = cutoff_shell - edge_width / 2.0
    phase = np.clip((shells - start) / edge_width, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * phase))


def lowpass(
    volume: np.ndarray,
    resolution: float,
    voxel_size: float,
    edge_width: float = 3.0,
    *,
    spectrum: np.ndarray | None = None,
) -> np.ndarray:
    """Low-pass a map at ``resolution`` Å with a raised-cosine edge ``edge_width`` pixels wide.

    Equivalent in purpose to ``relion_image_handler --lowpass``; frequencies beyond the
    Nyquist-sphere corner are removed too.
    """
    n = volume.shape[0]
    cutoff = resolution_to_shell(resolution, n, voxel_size)
    n_profile = int(np.ceil(np.sqrt(3) * n / 2)) + 2
    profile = lowpass_profile(n_profile, cutoff, edge_width)
    return apply_radial_filter(volume, profile, beyond=0.0, spectrum=spectrum)


def _mean_amplitude(spectrum: np.ndarray) -> np.ndarray:
    return radial_average(np.abs(spectrum), spectrum.shape[0])


def whiten(
    volume: np.ndarray,
    voxel_size: float,
    low_res: float = 10.0,
    high_res: float = 3.0,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Flatten the radially averaged amplitude between ``low_res`` and ``high_res`` (Å).

    The amplitude profile ``A(r)`` is measured on ``volume · mask`` (mask optional); the filter
    ``W(r) = A(r_low) / A(r)`` is applied to the *unmasked* map for ``r_low < r < r_high``
    (1 below ``r_low``). Beyond ``r_high`` the filter holds its band-edge value so that it is
    continuous (no step that would ring), i.e. the falloff past ``high_res`` keeps its shape.

    Returns
    -------
    numpy.ndarray
        float32 ``[n, n, n]``.
    """
    if not low_res > high_res:
        raise ValueError(f"low_res ({low_res} Å) must be larger than high_res ({high_res} Å)")
    n = volume.shape[0]
    spectrum = rfft3(volume)
    measured = spectrum if mask is None else rfft3(volume * mask)
    amplitude = _mean_amplitude(measured)
    n_shells = n // 2 + 1
    r_low = min(resolution_to_shell(low_res, n, voxel_size), n_shells - 1)
    r_high = min(resolution_to_shell(high_res, n, voxel_size), n_shells - 1)
    shells = np.arange(n_shells, dtype=np.float64)
    reference = np.interp(r_low, shells, amplitude)
    floor = 1e-12 * max(float(amplitude.max()), 1e-30)
    gain = reference / np.maximum(amplitude, floor)
    edge_gain = reference / max(float(np.interp(r_high, shells, amplitude)), floor)
    profile = np.where(shells <= r_low, 1.0, np.where(shells >= r_high, edge_gain, gain))
    return apply_radial_filter(volume, profile, spectrum=spectrum, per_shell=True)


def fsc_weighting(fsc: np.ndarray, mode: str = "sqrt") -> np.ndarray:
    """Per-shell filter from an FSC curve (negative FSC → 0).

    ``mode="plain"``: ``FSC``; ``mode="sqrt"``: ``sqrt(2 FSC / (1 + FSC))`` (Rosenthal &
    Henderson's weight for a map made from both halves).
    """
    f = np.clip(np.asarray(fsc, dtype=np.float64), 0.0, 1.0)
    if mode == "plain":
        return f
    if mode == "sqrt":
        return np.sqrt(2.0 * f / (1.0 + f))
    raise ValueError(f"unknown FSC weighting mode {mode!r} (use 'plain' or 'sqrt')")


def spectrum_matching_gain(own: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Per-shell gain that gives spectrum ``own`` the radial mean amplitude of ``wanted``.

    Parameters
    ----------
    own, wanted
        Half-space spectra ``[n, n, n//2 + 1]`` (typically of the masked maps).

    Returns
    -------
    numpy.ndarray
        float64 ``[n//2 + 1]``; 0 for shells where ``own`` has no amplitude.
    """
    n = own.shape[0]
    own_amp = _mean_amplitude(own)
    wanted_amp = _mean_amplitude(wanted)
    floor = 1e-12 * max(float(own_amp.max()), 1e-30)
    return np.where(own_amp > floor, wanted_amp / np.maximum(own_amp, floor), 0.0)[: n // 2 + 1]


def _per_shell_filter(profile: np.ndarray, n: int) -> np.ndarray:
    table = np.append(np.asarray(profile, dtype=np.float32), np.float32(profile[-1]))
    return table[np.minimum(shell_index(n), len(profile))]


def combine_maps(
    low_map: np.ndarray,
    high_map: np.ndarray,
    threshold_res: float,
    voxel_size: float,
    mask: np.ndarray | None = None,
    *,
    edge_width: float = 3.0,
    match: bool = True,
) -> np.ndarray:
    """Chimeric map: frequencies below ``threshold_res`` from ``low_map``, above from ``high_map``.

    With ``match`` (default), ``low_map`` is first spectrum-matched to ``high_map`` (radial mean
    amplitude under ``mask``) so the result has ``high_map``'s amplitude profile. The crossover
    is a raised cosine ``edge_width`` Fourier pixels wide centred on ``threshold_res``; the two
    weights sum to 1 everywhere.

    Returns
    -------
    numpy.ndarray
        float32 ``[n, n, n]``.
    """
    if low_map.shape != high_map.shape:
        raise ValueError(f"maps differ in shape: {low_map.shape} vs {high_map.shape}")
    n = low_map.shape[0]
    low_spectrum = rfft3(low_map)
    high_spectrum = rfft3(high_map)
    if match:
        if mask is None:
            gain = spectrum_matching_gain(low_spectrum, high_spectrum)
        else:
            gain = spectrum_matching_gain(rfft3(low_map * mask), rfft3(high_map * mask))
        low_spectrum = low_spectrum * _per_shell_filter(gain, n)
    cutoff = resolution_to_shell(threshold_res, n, voxel_size)
    n_profile = int(np.ceil(np.sqrt(3) * n / 2)) + 2
    weight = _profile_on_radius(
        lowpass_profile(n_profile, cutoff, edge_width), frequency_radius(n), 0.0
    )
    return irfft3(low_spectrum * weight + high_spectrum * (1.0 - weight), n)


# ----------------------------------------------------------------------------------------------
# Mask-corrected FSC (Chen et al. 2013)
@dataclass
class FSCReport:
    """Unmasked, masked and phase-randomisation-corrected FSC curves (``[n//2 + 1]`` each)."""

    unmasked: np.ndarray
    masked: np.ndarray
    randomised: np.ndarray
    corrected: np.ndarray
    randomisation_shell: int


def _randomise_phases(spectrum: np.ndarray, from_shell: int, rng: np.random.Generator):
    """Copy of ``spectrum`` with uniformly random phases on shells beyond ``from_shell``."""
    n = spectrum.shape[0]
    angle = rng.random(spectrum.shape, dtype=np.float32)
    angle *= np.float32(2.0 * np.pi)
    rotation = np.empty(spectrum.shape, dtype=np.complex64)
    rotation.real = np.cos(angle)
    rotation.imag = np.sin(angle)
    del angle
    rotation[shell_index(n) <= from_shell] = 1.0
    rotation *= spectrum
    return rotation


def masked_fsc_corrected(
    map1: np.ndarray,
    map2: np.ndarray,
    mask: np.ndarray,
    *,
    randomisation_fsc: float = 0.8,
    seed: int = 0,
    spectra: tuple[np.ndarray, np.ndarray] | None = None,
    masked_fsc: np.ndarray | None = None,
) -> FSCReport:
    """Masked FSC corrected for mask-induced correlation by phase randomisation.

    Phases of both unmasked half-maps are randomised beyond the shell where the unmasked FSC
    first drops below ``randomisation_fsc``; the masked FSC of those, ``FSC_n``, gives
    ``FSC_true = (FSC_t − FSC_n) / (1 − FSC_n)`` beyond that shell (Chen et al. 2013).

    Parameters
    ----------
    map1, map2
        Half-maps ``[n, n, n]``.
    mask
        Soft mask in [0, 1], same shape.
    spectra
        ``(rfft3(map1), rfft3(map2))`` if already computed.
    masked_fsc
        ``fsc_curve(map1, map2, mask)`` if already computed (saves two FFTs).
    """
    n = map1.shape[0]
    spectrum1, spectrum2 = spectra if spectra is not None else (rfft3(map1), rfft3(map2))
    unmasked = fsc_from_spectra(spectrum1, spectrum2)
    masked = fsc_curve(map1, map2, mask) if masked_fsc is None else np.asarray(masked_fsc)
    below = np.nonzero(unmasked[1:] < randomisation_fsc)[0]
    start = int(below[0]) + 1 if below.size else n // 2
    rng = np.random.default_rng(seed)
    random1 = irfft3(_randomise_phases(spectrum1, start, rng), n)
    random1 *= mask
    random1_spectrum = rfft3(random1)
    del random1
    random2 = irfft3(_randomise_phases(spectrum2, start, rng), n)
    random2 *= mask
    randomised = fsc_from_spectra(random1_spectrum, rfft3(random2))
    del random2, random1_spectrum
    corrected = masked.copy()
    tail = np.arange(len(masked)) > start
    denominator = 1.0 - randomised[tail]
    corrected[tail] = np.where(
        np.abs(denominator) > 1e-6, (masked[tail] - randomised[tail]) / denominator, 0.0
    )
    return FSCReport(unmasked, masked, randomised, corrected, start)
