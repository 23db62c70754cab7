"""``spisonet.py whitening``: flatten a map's radial amplitude between two resolutions."""

from __future__ import annotations

import argparse

from spIsoNet.cli.common import add_voxel_size_argument, positive_float
from spIsoNet.errors import InputError

HELP = "flatten the radially averaged amplitude between low_res and high_res (sharpening)"
DESCRIPTION = (
    "Whitening: the rotationally averaged Fourier amplitude of map·mask is measured per shell and "
    "the map is filtered so that this profile is flat between --low_res and --high_res (Å). "
    "Below --low_res nothing changes; beyond --high_res the filter keeps its band-edge gain."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``whitening`` on ``parser``."""
    parser.add_argument("h1", help="input map (MRC)")
    parser.add_argument("-o", "--o", "--output", dest="o", default="whitening.mrc", help="output")
    parser.add_argument("--mask", default=None, help="soft mask for measuring the amplitudes")
    parser.add_argument(
        "--high_res", type=positive_float, default=3.0, help="high-resolution end of the band (Å)"
    )
    parser.add_argument(
        "--low_res", type=positive_float, default=10.0, help="low-resolution end of the band (Å)"
    )
    add_voxel_size_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Check the band, read the map (and the mask), write the whitened map; return 0."""
    from spIsoNet import fourier
    from spIsoNet.cli.common import load_maps, load_optional_mask, output_path
    from spIsoNet.io import write_map
    from spIsoNet.log import get_logger, setup_logging

    setup_logging()
    log = get_logger("whitening")
    if not args.low_res > args.high_res:
        raise InputError(
            f"--low_res {args.low_res} Å must be larger than --high_res {args.high_res}"
        )
    (volume,) = load_maps([args.h1], args.voxel_size, what="map")
    mask = load_optional_mask(args.mask, volume)
    out = output_path(args.o, [args.h1, args.mask])
    result = fourier.whiten(volume.data, volume.voxel_size, args.low_res, args.high_res, mask)
    write_map(out, result, volume.voxel_size, volume.origin)
    log.info("whitened %s between %.2f and %.2f Å → %s", args.h1, args.low_res, args.high_res, out)
    return 0
