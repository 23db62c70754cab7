"""``spisonet.py fsc3d``: 3D FSC volume of two half-maps plus an anisotropy report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from spIsoNet.cli.common import positive_float
from spIsoNet.errors import InputError

HELP = "3D FSC (FSC3D.mrc) of two half-maps, with global/directional resolution and sphericity"
DESCRIPTION = (
    "Computes the 3D FSC volume: at every Fourier voxel k up to --limit_res, the FSC of k's shell "
    "restricted to the double cone of half-angle --cone_angle around ±k. The output has the maps' "
    "box, zero frequency at index n//2 on every axis, 1 at the centre and 0 beyond --limit_res "
    "(use it as --aniso_file of `reconstruct`). Also writes <output>_report.json and "
    "<output>_report.png: global FSC (unmasked; masked with phase-randomisation correction), "
    "directional 0.143 resolution over Fibonacci axes, sphericity and cFAR (SIMPLE-style).\n\n"
    "example: spisonet.py fsc3d h1.mrc h2.mrc mask.mrc --ncpus 16 --limit_res 3.5"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``fsc3d`` on ``parser`` (names of the published tool)."""
    parser.add_argument("half1", help="first half-map (MRC)")
    parser.add_argument("half2", help="second half-map (MRC)")
    parser.add_argument(
        "mask_pos", nargs="?", default=None, metavar="mask", help="optional soft mask (MRC)"
    )
    parser.add_argument("--mask", "--m", dest="mask", default=None, help="soft mask (MRC)")
    parser.add_argument(
        "-o", "--o", "--output", dest="output", default="FSC3D.mrc", help="output FSC3D map"
    )
    parser.add_argument(
        "--limit_res",
        type=positive_float,
        default=None,
        help="resolution (Å) beyond which the volume is 0 (default: the global FSC = 0.143 "
        "resolution of the half-maps, masked when a mask is given)",
    )
    parser.add_argument(
        "--cone_angle",
        "--cone_sampling_angle",
        dest="cone_angle",
        type=positive_float,
        default=10.0,
        help="cone half-angle (degrees) of the FSC3D volume (published spIsoNet: 10, 3DFSC: 20)",
    )
    parser.add_argument(
        "--method",
        choices=("weighted", "cosine"),
        default="weighted",
        help="weighted: Σ Re F1F2* / sqrt(Σ|F1|² Σ|F2|²) over the cone (3DFSC); cosine: mean of "
        "per-voxel phase cosines over the cone (published spIsoNet)",
    )
    parser.add_argument(
        "--ncpus",
        type=int,
        default=None,
        help="threads for the FFTs (default: all cores available to this process)",
    )
    parser.add_argument(
        "--report_cone_angle",
        type=positive_float,
        default=20.0,
        help="cone half-angle (degrees) for directional resolution, sphericity and cFAR",
    )
    parser.add_argument(
        "--n_directions",
        type=int,
        default=256,
        help="Fibonacci axes for directional resolution (≥ 100 recommended)",
    )
    parser.add_argument(
        "--no_report", action="store_true", help="write only the FSC3D map (no JSON/PNG report)"
    )
    parser.add_argument(
        "--keep_highres",
        action="store_true",
        help="published option: set the volume beyond --limit_res to 1 instead of 0 "
        "(not recommended)",
    )
    from spIsoNet.cli.common import add_voxel_size_argument

    add_voxel_size_argument(parser)


def report_paths(output: Path) -> tuple[Path, Path]:
    """``<output stem>_report.json`` and ``.png`` next to the output (``.gz``/``.bz2`` ignored)."""
    name = output.name
    for suffix in (".gz", ".bz2"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    stem = Path(name).stem
    return output.with_name(f"{stem}_report.json"), output.with_name(f"{stem}_report.png")


def _check_options(args: argparse.Namespace) -> None:
    for name in ("mask", "mask_pos"):  # the published CLI accepted the string "None"
        if getattr(args, name) in ("", "None", "none"):
            setattr(args, name, None)
    if args.mask_pos and args.mask and Path(args.mask_pos) != Path(args.mask):
        raise InputError(f"mask given twice: {args.mask_pos} (positional) and --mask {args.mask}")
    if not 0 < args.cone_angle <= 90:
        raise InputError(f"--cone_angle {args.cone_angle}: must be in (0, 90] degrees")
    if not 0 < args.report_cone_angle <= 90:
        raise InputError(f"--report_cone_angle {args.report_cone_angle}: must be in (0, 90]")
    if args.n_directions < 10:
        raise InputError(f"--n_directions {args.n_directions}: need at least 10")
    if args.ncpus is not None and args.ncpus < 1:
        raise InputError(f"--ncpus {args.ncpus}: must be at least 1")


def run(args: argparse.Namespace) -> int:
    """Compute the FSC3D volume and its report, write them as one set; return the exit code."""
    import numpy as np

    from spIsoNet.cli.common import load_maps, load_optional_mask, output_path
    from spIsoNet.fourier import available_cores
    from spIsoNet.fsc3d.conical import ConicalFSC
    from spIsoNet.fsc3d.plots import plot_report
    from spIsoNet.fsc3d.report import build_report, format_summary
    from spIsoNet.io import output_set, write_map
    from spIsoNet.io.jsonio import dumps
    from spIsoNet.log import get_logger, setup_logging

    setup_logging()
    log = get_logger("fsc3d")
    _check_options(args)
    mask_path = args.mask or args.mask_pos
    half1, half2 = load_maps([args.half1, args.half2], args.voxel_size)
    mask = load_optional_mask(mask_path, half1)
    out = output_path(args.output, [args.half1, args.half2, mask_path])
    json_path, png_path = report_paths(out)
    inputs = [args.half1, args.half2, mask_path]
    for extra in (json_path, png_path):
        output_path(str(extra), inputs)
    n, voxel = half1.box, half1.voxel_size
    if args.limit_res is not None and args.limit_res < 2 * voxel:
        log.warning(
            "--limit_res %.3f Å is beyond Nyquist (%.3f Å); using Nyquist",
            args.limit_res,
            2 * voxel,
        )
    if mask is None:
        log.warning("no mask given: the FSC3D includes the solvent; a soft mask is recommended")
    if args.limit_res is not None and n * voxel / args.limit_res < 1:
        raise InputError(
            f"--limit_res {args.limit_res} Å is coarser than the box ({n * voxel:.1f} Å): "
            "no Fourier shell inside it"
        )
    ncpus = min(args.ncpus or available_cores(), available_cores())
    log.info(
        "half-maps %s, %s: %d³ voxels of %.4f Å; mask: %s",
        args.half1,
        args.half2,
        n,
        voxel,
        mask_path or "none",
    )

    # all outputs are written as one set: renamed together at the end, removed on any failure
    with output_set() as outputs:
        t0 = time.perf_counter()
        engine = ConicalFSC(half1.data, half2.data, mask=mask, method=args.method, n_threads=ncpus)
        result = engine.fsc3d(voxel, limit_res=args.limit_res, cone_angle=args.cone_angle)
        seconds = time.perf_counter() - t0
        log.info(
            "FSC3D %d³ (%s, cone %g°) up to %.3f Å (shell %d) in %.1f s",
            n,
            args.method,
            args.cone_angle,
            result.limit_res,
            result.limit_shell,
            seconds,
        )
        volume = result.volume
        if args.keep_highres:
            c = n // 2
            k = np.arange(n) - c
            r2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
            volume = np.where(r2 > (result.limit_shell + 0.5) ** 2, np.float32(1.0), volume)
        write_map(out, volume, voxel, outputs=outputs)
        del volume  # (a copy with --keep_highres); the report reads result.volume
        if args.no_report:
            engine.release()
        else:
            report, arrays = build_report(
                engine,
                result,
                half1.data,
                half2.data,
                mask=mask,
                report_cone_angle=args.report_cone_angle,
                n_directions=args.n_directions,
                inputs={"half1": args.half1, "half2": args.half2, "mask": mask_path},
                release_engine=True,
            )
            report["outputs"] = {"fsc3d": str(out), "json": str(json_path), "png": str(png_path)}
            report["timings"]["fsc3d_seconds"] = round(seconds, 3)
            with outputs.stage(json_path) as tmp:
                tmp.write_text(dumps(report, indent=1) + "\n", encoding="utf-8")
            with outputs.stage(png_path) as tmp:
                plot_report(report, arrays, tmp)
    log.info("wrote %s", out)
    if not args.no_report:
        print(format_summary(report), flush=True)
        log.info("wrote %s and %s", json_path, png_path)
    return 0
