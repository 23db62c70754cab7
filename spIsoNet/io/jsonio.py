"""Strict JSON output for every report the package writes.

``json.dumps`` writes ``NaN``/``Infinity`` for non-finite floats, which is not JSON (strict
parsers such as ``jq`` or JavaScript's ``JSON.parse`` reject it); numpy scalars and arrays and
paths are not serialisable at all. :func:`to_plain` turns all of these into plain JSON values
(non-finite → ``null``) and :func:`write_json` writes them atomically.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from spIsoNet.io.atomic import write_text_atomic


def to_plain(value: Any) -> Any:
    """Return ``value`` as plain JSON types: dicts, lists, str, int, float, bool, None.

    numpy scalars/arrays become Python numbers/lists, paths become strings, objects with a
    ``to_json()`` method (e.g. ``AnisotropyMetrics``) what it returns, other dataclasses dicts,
    and NaN/±Inf become ``None`` (null).
    """
    if callable(getattr(value, "to_json", None)):  # records with their own JSON keys
        return to_plain(value.to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    """Strict JSON text of ``value`` (see :func:`to_plain`)."""
    return json.dumps(to_plain(value), indent=indent, allow_nan=False)


def write_json(path: str | os.PathLike, value: Any, indent: int | None = 2) -> Path:
    """Write ``value`` as strict JSON to ``path`` atomically; return the path."""
    final = Path(path)
    write_text_atomic(final, dumps(value, indent=indent) + "\n")
    return final
