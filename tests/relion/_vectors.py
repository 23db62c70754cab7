"""Shared fixtures of the RELION tests: the captured calls and a tiny plugin configuration."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np

from spIsoNet.relion.call import ExternalStar, read_external_star

#: the captured relion_refine 5.0.1 calls with RELION's own results (tests/data/README.md)
VECTORS = Path(__file__).resolve().parents[1] / "data" / "relion-vectors"

#: a tiny, fast correction on CPU with the start conditions forced
TINY = {
    "ISONET_START_HEALPIX": "0",
    "ISONET_START_RESOLUTION": "100",
    "ISONET_NET_WIDTH": "4",
    "ISONET_CUBE_SIZE": "16",
    "ISONET_N_SUBVOLUME": "4",
    "ISONET_BATCH_SIZE": "4",
    "ISONET_ACC_BATCHES": "1",
    "ISONET_EPOCHS": "1",
    "ISONET_DEVICE": "cpu",
    "ISONET_SEED": "3",
}


def call_arrays(call: str, folder: Path | None = None) -> tuple[ExternalStar, list[np.ndarray]]:
    """The STAR file and the data_real, data_imag and weight arrays of a captured call.

    ``folder``: where the (uncompressed) arrays were copied; default the captured ``.mrc.gz``.
    """
    root = VECTORS / "calls" / call / f"{call}_external_reconstruct"
    ext = read_external_star(f"{root}.star")
    arrays = []
    for part in ("data_real", "data_imag", "weight"):
        path = (
            f"{root}_{part}.mrc.gz"
            if folder is None
            else folder / f"{call}_external_reconstruct_{part}.mrc"
        )
        with mrcfile.open(path) as mrc:
            arrays.append(np.array(mrc.data))
    return ext, arrays
