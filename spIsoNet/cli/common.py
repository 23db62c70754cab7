"""Helpers shared by the command modules: loading validated inputs, naming outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from spIsoNet.errors import InputError
from spIsoNet.io import MapData, check_same_grid, read_map, read_mask, require_contrast


def add_voxel_size_argument(parser: argparse.ArgumentParser) -> None:
    """``--voxel_size``: override for headers that say 0 (or are wrong)."""
    parser.add_argument(
        "--voxel_size",
        type=float,
        default=None,
        help="voxel size in Å to use instead of the map headers' (needed when a header says 0)",
    )


def load_maps(
    paths: list[str], voxel_size: float | None = None, what: str = "half-map"
) -> list[MapData]:
    """Read cubic, non-constant maps that share shape and voxel size; :class:`InputError` otherwise.

    A constant (e.g. all-zero) map is rejected here, for every command: no FSC, filter or
    correction means anything on it.
    """
    maps = [read_map(path, voxel_size=voxel_size, what=what) for path in paths]
    check_same_grid(maps)
    require_contrast(maps, what=what)
    return maps


def load_optional_mask(path: str | None, like: MapData) -> np.ndarray | None:
    """Read a soft mask on the grid of ``like`` (None when no path is given)."""
    if path in (None, "", "None"):
        return None
    return read_mask(path, like)


def output_path(path: str, inputs: list[str]) -> Path:
    """Validate an output path: its folder exists and it is not one of the inputs."""
    out = Path(path)
    if not out.parent.is_dir() and str(out.parent) not in ("", "."):
        if out.parent.exists():
            raise InputError(f"{out}: {out.parent} is a file, not a folder")
        raise InputError(f"{out}: output folder {out.parent} does not exist")
    if out.is_dir():
        raise InputError(f"{out}: is a folder, not a file")
    for name in inputs:
        if name and Path(name).exists() and out.exists() and out.resolve() == Path(name).resolve():
            raise InputError(f"{out}: output would overwrite the input {name}")
    return out


def positive_float(text: str) -> float:
    """Parse a float > 0 (an argparse ``type``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def make_output_dir(path: Path, option: str = "--output_dir") -> list[Path]:
    """Create an output folder and its missing parents; returns the folders created (outer first).

    Raises
    ------
    InputError
        ``path`` is a file, or the folder cannot be created (read-only file system, ...).
    """
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: exists and is not a folder")
    missing = [p for p in (path, *path.parents) if not p.exists()][::-1]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot create it: {exc.strerror or exc}") from None
    return missing


def remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a run created (innermost first) while they are empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return
