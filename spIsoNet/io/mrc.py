"""Reading, validating and writing MRC maps.

Arrays are float32 with axes ``[z, y, x]`` (mrcfile's order); voxel sizes are in Å.
Every problem with a file raises :class:`spIsoNet.errors.InputError` with one line that names
the file and the problem.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import mrcfile
import numpy as np

from spIsoNet.errors import InputError, os_error_words
from spIsoNet.io.atomic import OutputSet, atomic_output
from spIsoNet.log import get_logger

log = get_logger("io")

#: relative tolerance when comparing voxel sizes of maps that must share a grid
VOXEL_SIZE_RTOL = 1e-3


@dataclass
class MapData:
    """A 3D map with its sampling.

    Attributes
    ----------
    data
        float32 array, shape ``(nz, ny, nx)``.
    voxel_size
        Voxel edge in Å (isotropic).
    origin
        Header origin ``(x, y, z)`` in Å, kept so that outputs line up with inputs in viewers.
    path
        Where the map was read from ("" for maps made in memory).
    """

    data: np.ndarray
    voxel_size: float
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    path: str = field(default="")

    @property
    def box(self) -> int:
        """Edge of a cubic map in voxels."""
        return int(self.data.shape[0])


def open_mrc(name: str, what: str) -> tuple[np.ndarray, float, tuple[float, float, float]]:
    """Open an MRC file; every problem is one :class:`InputError` line naming the file.

    Returns
    -------
    (data, header voxel size in Å, origin (x, y, z) in Å)
        ``data`` is a float32 copy in the file's ``[z, y, x]`` order.

    Raises
    ------
    InputError
        A folder or a missing file, a file-system error (permission, I/O: in words), or a file
        that is not a readable MRC file (truncated or corrupt).
    """
    if Path(name).is_dir():
        raise InputError(f"{name}: {what} is a folder, not a file")
    if not Path(name).is_file():
        raise InputError(f"{name}: {what} file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(name, mode="r", permissive=False) as mrc:
                header_voxel = float(mrc.voxel_size.x)
                origin = (
                    float(mrc.header.origin.x),
                    float(mrc.header.origin.y),
                    float(mrc.header.origin.z),
                )
                data = np.asarray(mrc.data).astype(np.float32, copy=True)
    except OSError as exc:
        if exc.errno is not None:  # the file system, not the file's content (permission, I/O)
            raise InputError(f"{name}: cannot read the {what}: {os_error_words(exc)}") from None
        raise InputError(f"{name}: not a readable MRC {what} (truncated or corrupt?)") from None
    except Exception as exc:  # mrcfile raises ValueError/EOFError for broken files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{name}: not a readable MRC {what} (truncated or corrupt?): {reason}"
        ) from None
    return data, header_voxel, origin


def read_map(
    path: str | os.PathLike,
    *,
    require_cubic: bool = True,
    voxel_size: float | None = None,
    what: str = "map",
) -> MapData:
    """Read and validate a 3D MRC map (``.mrc``, ``.map``, ``.mrcs``, ``.mrc.gz``, ``.mrc.bz2``).

    Parameters
    ----------
    path
        File to read.
    require_cubic
        Reject maps whose three edges differ.
    voxel_size
        Voxel size in Å to use instead of the header's (needed when the header says 0).
    what
        Word used in messages ("half-map", "mask", ...).

    Returns
    -------
    MapData
        float32 data ``[z, y, x]``, voxel size (Å) and origin.

    Raises
    ------
    InputError
        Missing file, not an MRC file or truncated, not 3D, not cubic, NaN/Inf values, voxel
        size 0 (or negative) without an override.
    """
    name = str(path)
    data, header_voxel, origin = open_mrc(name, what)
    if data.ndim != 3:
        raise InputError(f"{name}: {what} must be a 3D volume, got shape {tuple(data.shape)}")
    if require_cubic and not (data.shape[0] == data.shape[1] == data.shape[2]):
        raise InputError(f"{name}: {what} must be cubic, got shape {tuple(data.shape)} (z, y, x)")
    if min(data.shape) < 2:
        raise InputError(f"{name}: {what} is too small, shape {tuple(data.shape)}")
    if not np.isfinite(data).all():
        bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        raise InputError(f"{name}: {what} contains {bad} NaN/Inf values")
    if voxel_size is not None:
        if not voxel_size > 0:
            raise InputError(f"{name}: voxel size given as {voxel_size} Å must be positive")
        if header_voxel > 0 and not np.isclose(header_voxel, voxel_size, rtol=VOXEL_SIZE_RTOL):
            log.warning(
                "%s: header voxel size %.4f Å overridden by %.4f Å", name, header_voxel, voxel_size
            )
        used_voxel = float(voxel_size)
    else:
        if not header_voxel > 0:
            raise InputError(
                f"{name}: voxel size in the header is {header_voxel:g} Å; "
                "give the right value with --voxel_size"
            )
        used_voxel = header_voxel
    return MapData(data=data, voxel_size=used_voxel, origin=origin, path=name)


def check_same_grid(maps: list[MapData], rtol: float = VOXEL_SIZE_RTOL) -> None:
    """Raise :class:`InputError` unless all maps share shape and voxel size (within ``rtol``)."""
    first = maps[0]
    for other in maps[1:]:
        if other.data.shape != first.data.shape:
            raise InputError(
                f"{other.path}: shape {tuple(other.data.shape)} differs from "
                f"{first.path}: {tuple(first.data.shape)}"
            )
        if not np.isclose(other.voxel_size, first.voxel_size, rtol=rtol, atol=0):
            raise InputError(
                f"{other.path}: voxel size {other.voxel_size:.4f} Å differs from "
                f"{first.path}: {first.voxel_size:.4f} Å"
            )


def require_contrast(maps: list[MapData], what: str = "half-map") -> None:
    """Raise :class:`InputError` for a map whose voxels all have one value (e.g. all zeros).

    An FSC of such a map is 0/0 at every shell: no resolution can be measured from it.
    """
    for item in maps:
        low, high = float(item.data.min()), float(item.data.max())
        if low == high:
            label = "all zeros" if low == 0.0 else f"every voxel is {low:g}"
            raise InputError(f"{item.path}: {what} is constant ({label}); no FSC can be computed")


def read_mask(path: str | os.PathLike, like: MapData, *, what: str = "mask") -> np.ndarray:
    """Read a soft mask that must share the grid of ``like``; values are clipped to [0, 1].

    A mask whose header voxel size is 0 takes the voxel size of ``like``.

    Returns
    -------
    numpy.ndarray
        float32 array with the shape of ``like.data``.
    """
    try:
        mask = read_map(path, require_cubic=False, what=what)
    except InputError as exc:
        if "voxel size in the header" not in str(exc):
            raise
        mask = read_map(path, require_cubic=False, what=what, voxel_size=like.voxel_size)
    check_same_grid([like, mask])
    low, high = float(mask.data.min()), float(mask.data.max())
    if low < 0.0 or high > 1.0:
        log.warning(
            "%s: %s values span [%.3g, %.3g]; clipped to [0, 1]", mask.path, what, low, high
        )
        np.clip(mask.data, 0.0, 1.0, out=mask.data)
    if float(mask.data.max()) == 0.0:
        raise InputError(f"{mask.path}: {what} is empty (all zeros)")
    return mask.data


def write_map(
    path: str | os.PathLike,
    data: np.ndarray,
    voxel_size: float,
    origin: tuple[float, float, float] | None = None,
    *,
    overwrite: bool = True,
    outputs: OutputSet | None = None,
) -> Path:
    """Write a float32 MRC map atomically (temporary name in the same folder, then rename).

    Parameters
    ----------
    path
        Destination; ``.gz``/``.bz2`` endings are written compressed.
    data
        Array ``[z, y, x]`` (converted to float32).
    voxel_size
        Voxel size in Å stored in the header.
    origin
        Header origin ``(x, y, z)`` in Å.
    overwrite
        If False and ``path`` exists, raise :class:`InputError`.
    outputs
        Write as part of this set of outputs (renamed when the set is committed) instead of
        on its own.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    final = Path(path)
    if not overwrite and final.exists():
        raise InputError(f"{final}: output exists; refusing to overwrite it")
    if not final.parent.is_dir():
        raise InputError(f"{final}: output folder {final.parent} does not exist")
    array = np.ascontiguousarray(data, dtype=np.float32)
    compression = {".gz": "gzip", ".bz2": "bzip2"}.get(final.suffix)
    staging = atomic_output(final) if outputs is None else outputs.stage(final)
    with staging as tmp:
        with mrcfile.new(tmp, overwrite=True, compression=compression) as mrc:
            mrc.set_data(array)
            mrc.voxel_size = float(voxel_size)
            if origin is not None:
                mrc.header.origin = tuple(float(o) for o in origin)
    return final
