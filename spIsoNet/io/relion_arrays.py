"""RELION's external-reconstruct arrays and result maps: read, check, write.

``relion_refine --external_reconstruct`` hands over three MRC files (``data_real``,
``data_imag``, ``weight``: float32 half spectra ``(Pf, Pf, Pf//2 + 1)``) and reads one
``N³`` float32 map back. Every problem raises :class:`~spIsoNet.errors.InputError` (reading) or
``ValueError`` (a map we would write or install) with one line naming the file.
"""

from __future__ import annotations

import os
import warnings

import mrcfile
import numpy as np

from spIsoNet.errors import InputError
from spIsoNet.io.mrc import open_mrc, write_map

__all__ = ["check_result_file", "read_fourier_array", "write_result"]


def read_fourier_array(path: str | os.PathLike, shape: tuple[int, int, int], what: str):
    """Read one of RELION's Fourier arrays, checking existence, format, shape and values.

    Parameters
    ----------
    path
        The MRC file named in the external-reconstruct STAR file.
    shape
        Expected numpy shape ``(Pf, Pf, Pf//2 + 1)``.
    what
        ``data_real``, ``data_imag`` or ``weight`` (for messages).

    Returns
    -------
    numpy.ndarray
        float32 array of ``shape``.

    Raises
    ------
    InputError
        Missing, unreadable/truncated, wrong shape, or NaN/Inf values.
    """
    name = str(path)
    data, _, _ = open_mrc(name, f"{what} array")
    if tuple(data.shape) != tuple(shape):
        raise InputError(f"{name}: {what} array has shape {tuple(data.shape)}, expected {shape}")
    if not np.isfinite(data).all():
        raise InputError(f"{name}: {what} array contains NaN/Inf values")
    return data


def write_result(path: str | os.PathLike, volume: np.ndarray, voxel_size: float | None) -> None:
    """Write a result map (exactly ``N³`` float32) atomically (temporary name, then rename).

    Raises
    ------
    ValueError
        The map is not a finite cube (nothing is written).
    OSError
        The folder is not writable (nothing is left behind).
    """
    n = volume.shape[0]
    if volume.shape != (n, n, n) or not np.isfinite(volume).all():
        raise ValueError(f"refusing to write {path}: map is not a finite {n}³ volume")
    write_map(path, volume.astype(np.float32, copy=False), voxel_size or 1.0)


def check_result_file(path: str | os.PathLike, n: int) -> None:
    """Raise ValueError unless ``path`` is a complete float32 ``n³`` MRC map with finite values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mrcfile.open(path, mode="r", permissive=False) as mrc:
            if mrc.data.shape != (n, n, n) or mrc.data.dtype != np.float32:
                raise ValueError(f"{path}: shape {mrc.data.shape} {mrc.data.dtype}, expected {n}³")
            if not np.isfinite(mrc.data).all():
                raise ValueError(f"{path}: contains NaN/Inf")
