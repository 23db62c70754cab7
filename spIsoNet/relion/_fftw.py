"""Double-precision 3D real FFTs through the system FFTW library (``libfftw3.so.3``), via ctypes.

Used by :mod:`.reconstruction` for the small odd internal grids of early RELION iterations
(59³, 71³, ...: often prime edges, where numpy's pocketfft falls back to Bluestein's algorithm
and FFTW, which RELION itself links, is 1.2–1.5× faster). RELION installations have the library;
where it cannot be loaded :func:`available` is False and numpy's FFT is used. Plans are made with
``FFTW_ESTIMATE`` (milliseconds) on private buffers and cached per edge; results agree with
numpy's to rounding (~1e-16 relative).
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

__all__ = ["Plans", "available"]

_ESTIMATE = 1 << 6
_LIBRARY_NAMES = ("libfftw3.so.3", "libfftw3.3.dylib", "libfftw3.dylib")
_state: dict[str, object] = {}
_lock = threading.Lock()


def _library() -> ctypes.CDLL | None:
    with _lock:
        if "lib" not in _state:
            lib = None
            for name in _LIBRARY_NAMES:
                try:
                    lib = ctypes.CDLL(name)
                    break
                except OSError:
                    continue
            if lib is not None:
                for function in ("fftw_plan_dft_r2c_3d", "fftw_plan_dft_c2r_3d"):
                    getattr(lib, function).restype = ctypes.c_void_p
                    getattr(lib, function).argtypes = [ctypes.c_int] * 3 + [
                        ctypes.c_void_p,
                        ctypes.c_void_p,
                        ctypes.c_uint,
                    ]
                for function in ("fftw_execute", "fftw_destroy_plan"):
                    getattr(lib, function).argtypes = [ctypes.c_void_p]
                    getattr(lib, function).restype = None
            _state["lib"] = lib
        return _state["lib"]  # type: ignore[return-value]


def available() -> bool:
    """Return whether the FFTW library can be loaded."""
    return _library() is not None


class Plans:
    """Forward (r2c) and inverse (c2r, unnormalised ×n³ undone) transforms of one edge ``n``.

    Not thread-safe (one instance per call of the reconstruction); buffers are private.
    """

    def __init__(self, n: int) -> None:
        lib = _library()
        if lib is None:
            raise OSError("libfftw3 not available")
        self.lib = lib
        self.n = int(n)
        self.real = np.zeros((n, n, n), dtype=np.float64)
        self.spectrum = np.zeros((n, n, n // 2 + 1), dtype=np.complex128)
        with _lock:  # the FFTW planner is not thread-safe
            self.forward = lib.fftw_plan_dft_r2c_3d(
                n, n, n, self.real.ctypes.data, self.spectrum.ctypes.data, _ESTIMATE
            )
            self.inverse = lib.fftw_plan_dft_c2r_3d(
                n, n, n, self.spectrum.ctypes.data, self.real.ctypes.data, _ESTIMATE
            )
        if not self.forward or not self.inverse:
            raise OSError(f"FFTW could not plan a {n}³ transform")

    def __del__(self) -> None:
        try:
            with _lock:
                for plan in (getattr(self, "forward", None), getattr(self, "inverse", None)):
                    if plan:
                        self.lib.fftw_destroy_plan(plan)
        except Exception:  # interpreter shutdown: the process frees everything anyway
            pass

    def execute_forward(self) -> None:
        """r2c of :attr:`real` into :attr:`spectrum`."""
        self.lib.fftw_execute(self.forward)

    def execute_inverse(self) -> None:
        """Unnormalised c2r of :attr:`spectrum` (destroyed) into :attr:`real`."""
        self.lib.fftw_execute(self.inverse)

    def rfftn(self, volume: np.ndarray) -> np.ndarray:
        """Compute numpy's ``rfftn(volume)`` (float64 ``[n, n, n]`` → complex128 half spectrum)."""
        self.real[...] = volume
        self.lib.fftw_execute(self.forward)
        return self.spectrum.copy()

    def irfftn(self, spectrum: np.ndarray) -> np.ndarray:
        """Compute numpy's ``irfftn(spectrum, s=(n, n, n))`` (FFTW's c2r overwrites its copy)."""
        self.spectrum[...] = spectrum
        self.lib.fftw_execute(self.inverse)
        return self.real * (1.0 / self.n**3)
