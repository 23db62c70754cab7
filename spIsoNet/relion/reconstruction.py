"""RELION's external reconstruction, reproduced in numpy.

``relion_refine --external_reconstruct`` hands over the back-projected Fourier data and weights of
one class/half on a ``pf``-oversampled grid. :func:`reconstruct` turns them into the real-space map
exactly as RELION's reference program ``relion_external_reconstruct`` does (3.1 = 4.0 = 5.0):

1. MAP (Wiener-like) term ``W + 1/(pf³·T·tau2)`` per original-size shell,
2. 10 iterations of gridding pre-weighting with the Fourier transform of a Kaiser–Bessel blob
   (Pipe & Menon / Matej style), on the odd internal grid ``P = 2R+3``,
3. weighting of the data, inverse FFT on the even file grid, centring, RELION's ``normfft`` scale,
4. cropping to ``N³``, background fill outside the box sphere and the sinc² gridding correction
   for trilinear interpolation.

The steps follow ``/work/shared/docs/relion-interface.md`` §4.2, including RELION's quirks that an
independent implementation must reproduce to agree to float precision: half-away-from-zero
rounding, a blob table read with a floor index and zero beyond 0.5, and the index mapping of the
odd internal grid. All arrays use numpy's ``rfftn`` layout (DC at ``[0, 0, 0]``, axes
``[z, y, x]``).

A missing tau2 table (``relion_reconstruct --external_reconstruct`` writes none) means no MAP term:
RELION's own program segfaults there; we reconstruct without regularisation (= its ``--no_map``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from spIsoNet.fourier import window_spectrum

#: Kaiser–Bessel blob of RELION's BackProjector: radius (table built for twice it), alpha, order 0
BLOB_RADIUS = 1.9
BLOB_ALPHA = 15.0
#: samples of RELION's tabulated blob Fourier transform on [0, 0.5)
BLOB_TABLE_SIZE = 10000
BLOB_TABLE_SAMPLING = 0.5 / BLOB_TABLE_SIZE
#: RELION's default number of gridding iterations in relion_external_reconstruct
GRIDDING_ITERATIONS = 10
#: raised-cosine width (voxels) of the background mask outside the box sphere
BACKGROUND_EDGE = 3.0
#: internal grids from this size on use :mod:`scipy.fft` with threads; smaller ones numpy's FFT
#: (importing scipy.fft costs ~0.2 s, more than all the FFTs of a 64³ call)
SCIPY_FFT_MIN_GRID = 96


def fft_threads(environ: Mapping[str, str] | None = None) -> int:
    """FFT threads: the cores this process may use (affinity), at most ``OMP_NUM_THREADS``.

    RELION starts the plugin with its rank's environment, so ``OMP_NUM_THREADS=1`` (as for
    relion_refine's own threads) gives one thread.
    """
    from spIsoNet.fourier import available_cores

    environ = os.environ if environ is None else environ
    try:
        omp = int(str(environ.get("OMP_NUM_THREADS", "")).split(",")[0])
    except ValueError:
        omp = 0
    cores = available_cores()
    return max(1, min(cores, omp) if omp > 0 else cores)


class _FFT:
    """``rfftn``/``irfftn`` over all three axes, one policy for all FFTs of a call.

    Internal grid below :data:`SCIPY_FFT_MIN_GRID`: FFTW through ctypes when the system library
    is there (:mod:`._fftw`; faster than pocketfft on the small, often prime, odd grids of early
    iterations), else numpy's FFT (importing scipy.fft would cost more than these FFTs). From
    that size on: scipy.fft with :func:`fft_threads` workers. float32 spectra/volumes (the mixed
    precision option) always go to numpy/scipy. All agree to rounding (≪ 1e-6).
    """

    def __init__(self, grid: int) -> None:
        self.kwargs: dict = {}
        self.backend = np.fft
        self.fftw: dict[int, object] | None = None
        if grid >= SCIPY_FFT_MIN_GRID:
            import scipy.fft

            self.backend = scipy.fft
            self.kwargs = {"workers": fft_threads()}
        else:
            from . import _fftw

            if _fftw.available():
                self.fftw = {}

    def fftw_plans(self, n: int):
        """FFTW plans (with their buffers) of edge ``n``, or None without FFTW."""
        return self._plans(n, np.dtype(np.float64))

    def _plans(self, n: int, dtype: np.dtype):
        if self.fftw is None or dtype not in (np.float64, np.complex128):
            return None
        if n not in self.fftw:
            from . import _fftw

            self.fftw[n] = _fftw.Plans(n)
        return self.fftw[n]

    def rfftn(self, volume: np.ndarray) -> np.ndarray:
        plans = self._plans(volume.shape[0], volume.dtype)
        if plans is not None:
            return plans.rfftn(volume)
        return self.backend.rfftn(volume, axes=(0, 1, 2), **self.kwargs)

    def ifft(self, spectrum: np.ndarray, n: int, axis: int) -> np.ndarray:
        """1-D inverse c2c FFT of length ``n`` along ``axis`` (numpy normalisation)."""
        return self.backend.ifft(spectrum, n=n, axis=axis, **self.kwargs)

    def irfft(self, spectrum: np.ndarray, n: int, axis: int) -> np.ndarray:
        """1-D inverse c2r FFT of length ``n`` along ``axis`` (numpy normalisation)."""
        return self.backend.irfft(spectrum, n=n, axis=axis, **self.kwargs)

    def irfftn(self, spectrum: np.ndarray, n: int) -> np.ndarray:
        plans = self._plans(n, spectrum.dtype)
        if plans is not None:
            return plans.irfftn(spectrum)
        return self.backend.irfftn(spectrum, s=(n, n, n), axes=(0, 1, 2), **self.kwargs)


def relion_round(x: np.ndarray | float) -> np.ndarray:
    """RELION's ``ROUND``: half away from zero (``floor(x + 0.5)`` for x > 0), as int64.

    numpy's ``round`` is half-to-even, which moves voxels with ``|k|/pf`` = 0.5, 2.5, ... into
    another shell.
    """
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, np.floor(x + 0.5), np.ceil(x - 0.5)).astype(np.int64)


@dataclass(frozen=True)
class GridGeometry:
    """Sizes of RELION's back-projector for one call (all in padded Fourier pixels).

    Attributes
    ----------
    ori_size
        ``N``, the box of the output map.
    padding
        ``pf``, the oversampling factor (float).
    r_max
        Original-size radius of the data: ``min(current_size, N) // 2``.
    R
        ``ROUND(pf · r_max)``; components with ``kz²+ky²+kx² < R²`` are used.
    grid_file
        ``Pf = ROUND(pf · N)``, the grid of the data/weight files.
    grid_internal
        ``P = 2R + 3`` (odd), the grid of the gridding iterations.
    grid_even
        ``Pe``: ``Pf`` rounded up to even, the grid of the final inverse FFT.
    """

    ori_size: int
    padding: float
    r_max: int
    R: int
    grid_file: int
    grid_internal: int
    grid_even: int

    @classmethod
    def from_call(cls, ori_size: int, current_size: int, padding: float) -> GridGeometry:
        """Geometry for ``rlnOriginalImageSize``, ``rlnCurrentImageSize``, ``rlnPaddingFactor``."""
        n = int(ori_size)
        cs = int(current_size)
        r_max = n // 2 if (cs < 0 or cs > n) else cs // 2
        big_r = int(relion_round(padding * r_max))
        pf_grid = int(relion_round(padding * n))
        return cls(
            ori_size=n,
            padding=float(padding),
            r_max=r_max,
            R=big_r,
            grid_file=pf_grid,
            grid_internal=2 * big_r + 3,
            grid_even=pf_grid + (pf_grid % 2),
        )

    @property
    def file_shape(self) -> tuple[int, int, int]:
        """Return the numpy shape ``(Pf, Pf, Pf//2+1)`` of the data/weight arrays."""
        return (self.grid_file, self.grid_file, self.grid_file // 2 + 1)


def blob_fourier_table(
    radius: float = 2.0 * BLOB_RADIUS, alpha: float = BLOB_ALPHA, size: int = BLOB_TABLE_SIZE
) -> np.ndarray:
    """Normalised Fourier transform of a 3D Kaiser–Bessel blob (order 0), RELION's table.

    ``T(w) ∝ I_{3/2}(s) / s^{3/2}`` with ``s = sqrt(alpha² − (2π·radius·w)²)``, sampled at
    ``w = i · 0.5/size`` for ``i = 0 … size−1`` and divided by ``T(0)``. In [0, 0.5) the argument
    of the square root stays positive for RELION's (radius 3.8, alpha 15), so only the modified
    Bessel branch is needed.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(size,)``; entry 0 is 1.
    """
    w = np.arange(size, dtype=np.float64) * (0.5 / size)
    s2 = alpha**2 - (2.0 * math.pi * radius * w) ** 2
    if np.any(s2 <= 0):
        raise ValueError("blob parameters leave the modified-Bessel branch inside [0, 0.5)")
    s = np.sqrt(s2)
    # I_{3/2}(s)/s^{3/2} = sqrt(2/pi) (cosh s - sinh s / s) / s^2; the exp(s) factors are taken out
    # to stay finite and cancel in the ratio to T(0).
    decay = np.exp(-2.0 * s)
    values = (0.5 * (1 + decay) - 0.5 * (1 - decay) / s) / s**2 * np.exp(s - alpha)
    return values / values[0]


def _signed(n: int, quirk: bool = False) -> np.ndarray:
    """Signed frequency (or real-space offset) of each index of an ``n``-point axis.

    ``quirk`` reproduces RELION's real-space mapping on its odd grid: index i → i if
    ``i < n//2`` else ``i − n`` (so index ``n//2`` maps to ``n//2 − n``).
    """
    i = np.arange(n, dtype=np.int64)
    if quirk:
        return np.where(i < n // 2, i, i - n)
    return np.where(i <= n // 2, i, i - n)


def _radius2(n_zy: int, n_x: int, *, quirk: bool = False, half_x: bool = True) -> np.ndarray:
    """Squared radius (int64) on an ``(n_zy, n_zy, n_x)`` grid of signed frequencies/offsets."""
    k = _signed(n_zy, quirk)
    kx = np.arange(n_x, dtype=np.int64) if half_x else _signed(n_x, quirk)
    return (k[:, None, None] ** 2 + k[None, :, None] ** 2) + kx[None, None, :] ** 2


def gridding_kernel(
    geom: GridGeometry, table: np.ndarray | None = None, dtype=np.float64
) -> np.ndarray:
    """Real-space multiplier ``g`` of the blob convolution on the ``P³`` grid.

    ``g = T(|x'| / (N·pf))`` with RELION's index mapping ``x'`` (quirk on the odd grid), read
    from the table with a floor index and 0 at and beyond 0.5, computed slab by slab. Keep
    ``dtype`` float64: the blob convolution mixes weights spanning ~10 orders of magnitude, and
    float32 rounding of ``g`` alone moves the final map by up to 3e-4 of its maximum.
    """
    table = blob_fourier_table() if table is None else table
    p = geom.grid_internal
    q2 = _signed(p, quirk=True).astype(np.float64) ** 2
    plane = q2[:, None] + q2[None, :]
    out = np.empty((p, p, p), dtype=dtype)
    scale = 1.0 / (geom.ori_size * geom.padding)
    for z in range(p):  # slabs keep the float64 temporaries small (P² instead of P³)
        rval = np.sqrt(q2[z] + plane) * scale
        idx = np.floor(rval / BLOB_TABLE_SAMPLING).astype(np.int64)
        out[z] = np.where(idx < table.size, table[np.minimum(idx, table.size - 1)], 0.0)
    return out


def map_regularised_weight(
    weight: np.ndarray,
    inside: np.ndarray,
    r2: np.ndarray,
    geom: GridGeometry,
    tau2: np.ndarray | None,
    tau2_fudge: float,
) -> np.ndarray:
    """``Fw``: the weight plus RELION's MAP term, on the P-grid (float64).

    Inside the data sphere, shell ``ires = ROUND(|k|/pf)``: ``W + 1/(pf³·T·tau2[ires])`` where
    tau2 > 0, ``W + 1/(0.001·W)`` where tau2 ≤ 0 and W > 1e-20, else ``W``. With ``tau2=None``
    (no tau2 table) the weight is returned unchanged.
    """
    if tau2 is None:
        return weight
    tau2 = np.asarray(tau2, dtype=np.float64)
    w_in = weight[inside]
    ires = relion_round(np.sqrt(r2[inside].astype(np.float64)) / geom.padding)
    # shells beyond the table (not expected from RELION) are treated as tau2 = 0
    t = np.where(ires < tau2.size, tau2[np.minimum(ires, tau2.size - 1)], 0.0)
    pf3 = geom.padding**3
    with np.errstate(divide="ignore", invalid="ignore"):
        reg_tau = 1.0 / (pf3 * tau2_fudge * t)
        reg_zero = 1.0 / (0.001 * w_in)
    extra = np.where(t > 0, reg_tau, np.where(w_in > 1e-20, reg_zero, 0.0))
    out = weight.copy()
    out[inside] = w_in + extra
    return out


def reconstruct(
    data_real: np.ndarray,
    data_imag: np.ndarray,
    weight: np.ndarray,
    *,
    ori_size: int,
    current_size: int,
    padding_factor: float,
    tau2: np.ndarray | None = None,
    tau2_fudge: float = 1.0,
    gridding_iterations: int = GRIDDING_ITERATIONS,
    double_iterations: int | None = None,
) -> np.ndarray:
    """Reconstruct a real-space map from RELION's back-projected data and weights.

    Parameters
    ----------
    data_real, data_imag, weight
        Arrays of ``<root>_external_reconstruct_{data_real,data_imag,weight}.mrc``, shape
        ``(Pf, Pf, Pf//2+1)`` with ``Pf = ROUND(pf·N)``, rfftn layout (DC at ``[0,0,0]``).
    ori_size
        ``N`` (``rlnOriginalImageSize``), the output box in voxels.
    current_size
        ``rlnCurrentImageSize`` (2·r_max in original pixels).
    padding_factor
        ``pf`` (``rlnPaddingFactor``).
    tau2
        ``rlnReferenceTau2`` per original-size shell (``N//2+1`` values), or None: no MAP term.
    tau2_fudge
        ``T`` (``rlnTau2FudgeFactor``).
    gridding_iterations
        Iterations of the gridding pre-weighting (RELION's program: 10).
    double_iterations
        Gridding iterations done in float64 (default: all, as RELION's double-precision build);
        the rest run in float32, about 3× faster. The first iterations need float64: the
        weights span ~7 orders of magnitude there. 2 keeps the result within ~1e-6 of RELION's
        on the reference vectors (see docs/benchmarks.md).

    Returns
    -------
    numpy.ndarray
        float32 ``(N, N, N)`` map ``[z, y, x]`` on RELION's scale, box centre at index ``N//2``.

    Raises
    ------
    ValueError
        Array shapes inconsistent with ``N`` and ``pf``, or non-finite values.
    """
    geom = GridGeometry.from_call(ori_size, current_size, padding_factor)
    for name, arr in (("data_real", data_real), ("data_imag", data_imag), ("weight", weight)):
        if tuple(arr.shape) != geom.file_shape:
            raise ValueError(
                f"{name} has shape {tuple(arr.shape)}, expected {geom.file_shape} for "
                f"N={geom.ori_size}, padding {geom.padding:g}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN/Inf values")
    if geom.R < 1:
        raise ValueError(f"current size {current_size} leaves no Fourier component to reconstruct")
    if tau2_fudge <= 0 and tau2 is not None:
        raise ValueError(f"tau2 fudge factor {tau2_fudge} must be positive")

    p = geom.grid_internal
    r2 = _radius2(p, p // 2 + 1)
    inside = r2 < geom.R**2
    weight_p = window_spectrum(weight, geom.grid_file, p, geom.R).astype(np.float64) * inside
    fw = map_regularised_weight(weight_p, inside, r2, geom, tau2, tau2_fudge)
    del weight_p

    # Gridding pre-weighting: Wn ← Wn / max(1e-6, |(Wn·Fw) ⊛ blob|) inside the sphere.
    fft = _FFT(p)
    wn = gridding_weights(fw, inside, geom, gridding_iterations, double_iterations, fft=fft)
    del fw

    # Weighted data, windowed to the even grid, inverse FFT.
    pe = geom.grid_even
    spectrum = np.empty(wn.shape, dtype=np.complex128)
    spectrum.real = window_spectrum(data_real, geom.grid_file, p, geom.R) * wn
    spectrum.imag = window_spectrum(data_imag, geom.grid_file, p, geom.R) * wn
    del wn
    n = geom.ori_size
    volume = centred_inverse(spectrum, geom, fft)
    del spectrum
    volume *= pe**3 / (geom.padding**3 * n)

    volume = fill_background(volume)
    volume = gridding_correction(volume, geom.padding)
    return volume.astype(np.float32)


def centred_inverse(spectrum: np.ndarray, geom: GridGeometry, fft: _FFT | None = None):
    """``fftshift(irfftn(window(spectrum, Pe), s=(Pe,)*3))`` cropped to ``N³``, pruned.

    The spectrum is non-zero only for ``|k| < R`` and only the central ``N`` of the ``Pe``
    outputs per axis are kept, so the three 1-D passes run on the columns that hold data and
    keep only the rows that are kept (about a quarter of a full ``Pe³`` inverse FFT). Same
    passes as ``irfftn`` (c2c along z, y, then c2r along x), so the result agrees to rounding.

    Parameters
    ----------
    spectrum
        complex ``(P, P, P//2+1)`` on the internal grid, rfftn layout.
    geom
        Grid sizes (``P``, ``Pe``, ``R``, ``N``).
    fft
        FFT library of the call.

    Returns
    -------
    numpy.ndarray
        float64 ``(N, N, N)``: FFT index ``(j − N/2) mod Pe`` at output index ``j`` (unscaled
        numpy normalisation, ``1/Pe³``).
    """
    fft = _FFT(geom.grid_internal) if fft is None else fft
    p, pe, r, n = geom.grid_internal, geom.grid_even, geom.R, geom.ori_size
    on_p = np.r_[0:r, p - (r - 1) : p]  # signed frequencies −(R−1) … R−1 on the two grids
    on_e = np.r_[0:r, pe - (r - 1) : pe]
    if 2 * r - 1 > pe or n > pe:
        raise ValueError(f"inconsistent grids: R {r}, Pe {pe}, N {n}")
    keep = (np.arange(n) - n // 2) % pe  # fftshift + crop in one gather
    block = spectrum[np.ix_(on_p, on_p, np.arange(r))]
    padded = np.zeros((pe, block.shape[1], r), dtype=np.complex128)
    padded[on_e] = block
    block = fft.ifft(padded, pe, axis=0)[keep]
    padded = np.zeros((n, pe, r), dtype=np.complex128)
    padded[:, on_e] = block
    block = fft.ifft(padded, pe, axis=1)[:, keep]
    padded = np.zeros((n, n, pe // 2 + 1), dtype=np.complex128)
    padded[:, :, :r] = block
    return fft.irfft(padded, pe, axis=2)[:, :, keep]


def gridding_weights(
    fw: np.ndarray,
    inside: np.ndarray,
    geom: GridGeometry,
    iterations: int = GRIDDING_ITERATIONS,
    double_iterations: int | None = None,
    *,
    fft: _FFT | None = None,
) -> np.ndarray:
    """Compute the iterative gridding pre-weights ``Wn`` on the P-grid (float64, half spectrum).

    ``Wn`` starts at 1 inside the sphere (0 outside); each iteration convolves ``Wn·Fw`` with
    the blob (a product with :func:`gridding_kernel` in real space, numpy FFT normalisation) and
    divides ``Wn`` by ``max(1e-6, |result|)`` inside.

    Parameters
    ----------
    fw
        MAP-regularised weight, shape ``(P, P, P//2+1)``.
    inside
        bool, same shape: ``kz²+ky²+kx² < R²``.
    geom
        Grid sizes.
    iterations
        Number of iterations (RELION: 10).
    double_iterations
        How many of the first iterations run in float64 (None: all).
    fft
        FFT library of the call (default: chosen by the grid size).
    """
    p = geom.grid_internal
    n_double = iterations if double_iterations is None else max(0, int(double_iterations))
    fft = _FFT(p) if fft is None else fft
    kernel = gridding_kernel(geom)
    kernel32 = kernel.astype(np.float32) if n_double < iterations else None
    fw32 = fw.astype(np.float32) if n_double < iterations else None
    wn = inside.astype(np.float64)
    plans = fft.fftw_plans(p) if n_double > 0 else None
    kernel_fftw = kernel * (1.0 / p**3) if plans is not None else None
    for it in range(int(iterations)):
        double = it < n_double
        if double and plans is not None:
            # FFTW on its own buffers, no copies: c2r (unnormalised; 1/P³ is in the kernel),
            # product with the kernel in place, r2c
            plans.spectrum.imag[...] = 0.0  # c2r overwrites its input
            np.multiply(wn, fw, out=plans.spectrum.real)
            plans.execute_inverse()
            np.multiply(plans.real, kernel_fftw, out=plans.real)
            plans.execute_forward()
            magnitude = np.abs(plans.spectrum)
        else:
            product = wn * fw if double else wn.astype(np.float32) * fw32
            conv = fft.irfftn(product, p)
            del product
            conv *= kernel if double else kernel32
            magnitude = np.abs(fft.rfftn(conv))
            del conv
        # outside the sphere Wn is 0 and stays 0; |C| ≥ 1e-6 so the division is safe
        np.maximum(magnitude, 1e-6, out=magnitude)
        wn /= magnitude
        del magnitude
    return wn


def _box_radius(n: int) -> np.ndarray:
    """Distance (voxels, float64) of every voxel from the box centre ``(N//2, N//2, N//2)``."""
    c = np.arange(n, dtype=np.float64) - n // 2
    return np.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)


def fill_background(volume: np.ndarray, edge: float = BACKGROUND_EDGE) -> np.ndarray:
    """Replace the region outside the box sphere by its weighted mean (RELION's soft fill).

    ``b(r)`` = 0 for r < N/2, ``0.5 + 0.5·cos(π·(N/2 + edge − r)/edge)`` up to ``N/2 + edge``,
    1 beyond; ``v ← (1−b)·v + b·Σ(b·v)/Σb``.
    """
    n = volume.shape[0]
    r = _box_radius(n)
    radius = n / 2.0
    b = np.where(
        r < radius,
        0.0,
        np.where(r > radius + edge, 1.0, 0.5 + 0.5 * np.cos(np.pi * (radius + edge - r) / edge)),
    )
    total = b.sum()
    if total <= 0:
        return volume
    background = float((b * volume).sum() / total)
    return (1.0 - b) * volume + b * background


def gridding_correction(volume: np.ndarray, padding: float) -> np.ndarray:
    """Divide by ``sinc²(r / (pf·N))`` (trilinear-interpolation correction), r in voxels."""
    n = volume.shape[0]
    x = _box_radius(n) / (padding * n)
    return volume / np.sinc(x) ** 2
