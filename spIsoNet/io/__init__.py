"""File input/output: MRC maps, STAR files, atomic writes.

The STAR readers (``starfile``, which imports pandas: ~0.2 s and ~75 MB) load on first use, so
the map tools do not pay for them.
"""

from spIsoNet.io.atomic import OutputSet, atomic_output, output_set, write_text_atomic
from spIsoNet.io.jsonio import write_json
from spIsoNet.io.mrc import (
    MapData,
    check_same_grid,
    read_map,
    read_mask,
    require_contrast,
    write_map,
)

_STAR_NAMES = ("key_values", "read_star", "require_labels")

__all__ = [
    "MapData",
    "OutputSet",
    "atomic_output",
    "check_same_grid",
    "key_values",
    "output_set",
    "read_map",
    "read_mask",
    "read_star",
    "require_contrast",
    "require_labels",
    "write_json",
    "write_map",
    "write_text_atomic",
]


def __getattr__(name: str):
    if name in _STAR_NAMES:
        from spIsoNet.io import star

        return getattr(star, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
