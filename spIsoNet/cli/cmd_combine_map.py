"""``spisonet.py combine_map``: low frequencies from one map, high frequencies from another."""

from __future__ import annotations

import argparse

from spIsoNet.cli.common import add_voxel_size_argument, positive_float

HELP = "chimeric map: frequencies below threshold_res from low_map, beyond from high_map"
DESCRIPTION = (
    "combine_map: low_map is spectrum-matched to high_map (radial mean amplitude under the "
    "mask), then its Fourier components below threshold_res (Å) are combined with high_map's "
    "beyond it through a raised-cosine crossover (--edge_width Fourier pixels)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``combine_map`` on ``parser``."""
    parser.add_argument("low_map", help="map that provides the low frequencies")
    parser.add_argument("high_map", help="map that provides the high frequencies")
    parser.add_argument("out_map", help="output map")
    parser.add_argument("threshold_res", type=positive_float, help="crossover resolution (Å)")
    parser.add_argument("--mask_file", "--mask", dest="mask_file", default=None, help="soft mask")
    parser.add_argument(
        "--edge_width", type=float, default=3.0, help="crossover width (Fourier pixels)"
    )
    parser.add_argument(
        "--no_match",
        action="store_true",
        help="do not spectrum-match low_map to high_map before combining",
    )
    add_voxel_size_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Read both maps (and the mask), write the combined map; return the exit code (0)."""
    from spIsoNet import fourier
    from spIsoNet.cli.common import load_maps, load_optional_mask, output_path
    from spIsoNet.io import write_map
    from spIsoNet.log import get_logger, setup_logging

    setup_logging()
    log = get_logger("combine_map")
    low, high = load_maps([args.low_map, args.high_map], args.voxel_size, what="map")
    mask = load_optional_mask(args.mask_file, high)
    out = output_path(args.out_map, [args.low_map, args.high_map, args.mask_file])
    combined = fourier.combine_maps(
        low.data,
        high.data,
        args.threshold_res,
        high.voxel_size,
        mask,
        edge_width=args.edge_width,
        match=not args.no_match,
    )
    write_map(out, combined, high.voxel_size, high.origin)
    log.info(
        "combined %s (< %.2f Å) with %s → %s", args.low_map, args.threshold_res, args.high_map, out
    )
    return 0
