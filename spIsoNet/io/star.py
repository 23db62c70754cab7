"""RELION STAR files through :mod:`starfile`, with helpers for key/value blocks."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import starfile

from spIsoNet.errors import InputError


def read_star(path: str | os.PathLike) -> dict[str, Any]:
    """Read every block of a STAR file.

    Returns
    -------
    dict
        block name → :class:`pandas.DataFrame` for loops, or ``dict`` label → value for
        key/value blocks. Labels are without the leading ``_`` and ``rln`` is kept
        (``rlnPixelSize``), as starfile gives them.

    Raises
    ------
    InputError
        Missing or unreadable/malformed file.
    """
    name = str(path)
    if not Path(name).is_file():
        raise InputError(f"{name}: STAR file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blocks = starfile.read(name, always_dict=True)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{name}: malformed STAR file: {reason}") from None
    if not blocks:
        raise InputError(f"{name}: malformed STAR file: no data blocks")
    return dict(blocks)


def key_values(blocks: dict[str, Any], block: str, path: str = "") -> dict[str, Any]:
    """Return a key/value block as a ``dict`` (a one-row loop is accepted too).

    Raises
    ------
    InputError
        The block is missing or is a multi-row loop.
    """
    if block not in blocks:
        raise InputError(f"{path}: STAR block data_{block} is missing")
    value = blocks[block]
    if isinstance(value, dict):
        return value
    if isinstance(value, pd.DataFrame) and len(value) == 1:
        return {k: v for k, v in value.iloc[0].items()}
    raise InputError(f"{path}: STAR block data_{block} is a loop, expected label/value pairs")


def require_labels(table: pd.DataFrame | dict, labels: list[str], block: str, path: str) -> None:
    """Raise :class:`InputError` naming the first label of ``labels`` missing in ``table``."""
    present = table.columns if isinstance(table, pd.DataFrame) else table.keys()
    for label in labels:
        if label not in present:
            raise InputError(f"{path}: STAR block data_{block} has no {label}")
