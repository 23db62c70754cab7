"""``spisonet.py lowpass``: raised-cosine low-pass filter (replaces relion_image_handler)."""

from __future__ import annotations

import argparse

from spIsoNet.cli.common import add_voxel_size_argument, positive_float

HELP = "low-pass filter a map at a resolution (Å) with a soft raised-cosine edge"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``lowpass`` on ``parser``."""
    parser.add_argument("input", help="input map")
    parser.add_argument("output", help="output map")
    parser.add_argument("resolution", type=positive_float, help="cutoff resolution (Å)")
    parser.add_argument(
        "--edge_width", type=float, default=3.0, help="width of the cosine edge (Fourier pixels)"
    )
    add_voxel_size_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Read the map, write its low-passed copy; return the exit code (0)."""
    from spIsoNet import fourier
    from spIsoNet.cli.common import load_maps, output_path
    from spIsoNet.io import write_map
    from spIsoNet.log import get_logger, setup_logging

    setup_logging()
    (volume,) = load_maps([args.input], args.voxel_size, what="map")
    out = output_path(args.output, [args.input])
    filtered = fourier.lowpass(volume.data, args.resolution, volume.voxel_size, args.edge_width)
    write_map(out, filtered, volume.voxel_size, volume.origin)
    get_logger("lowpass").info("low-passed %s at %.2f Å → %s", args.input, args.resolution, out)
    return 0
