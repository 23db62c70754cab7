"""File input/output: MRC maps, STAR files, atomic writes."""

from spIsoNet.io.atomic import atomic_output, write_text_atomic
from spIsoNet.io.jsonio import write_json
from spIsoNet.io.mrc import MapData, check_same_grid, read_map, read_mask, write_map
from spIsoNet.io.star import key_values, read_star, require_labels

__all__ = [
    "MapData",
    "atomic_output",
    "check_same_grid",
    "key_values",
    "read_map",
    "read_mask",
    "read_star",
    "require_labels",
    "write_json",
    "write_map",
    "write_text_atomic",
]
