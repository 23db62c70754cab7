"""``spisonet.py reconstruct``: correct preferred-orientation anisotropy of half-maps.

Thin layer over :func:`spIsoNet.engine.correct_maps`: reads the maps, runs the engine, writes
``corrected_<base>.mrc``, ``corrected_<base>_filtered.mrc``, the model ``.pt``, ``loss.png`` and
``report.json`` into ``--output_dir``. Argument names and defaults follow the published tool.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

HELP = "train the anisotropy-correction network on half-maps and write corrected maps"
DESCRIPTION = (
    "Train a 3D U-Net (noise2noise between the two half-maps, FSC3D-weighted consistency and "
    "rotation-equivariance losses) and write corrected half-maps. One half-map = single-map "
    "mode. Several GPUs: one process per GPU (DDP); several nodes: launch with "
    "'torchrun --nnodes N --nproc_per_node G bin/spisonet.py reconstruct ...'."
)

_MAP_SUFFIX = re.compile(r"(\.(mrc|map|mrcs|rec|ccp4))(\.(gz|bz2))?$", re.IGNORECASE)


def _bool(value: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y", "on"):
        return True
    if text in ("0", "false", "no", "n", "off", "none"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def _flag(parser, name: str, help_text: str) -> None:
    # Accepts both "--flag" and the published "--flag True/False".
    parser.add_argument(
        name, type=_bool, nargs="?", const=True, default=False, metavar="BOOL", help=help_text
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("i1", help="half-map 1 (MRC)")
    parser.add_argument("i2", nargs="?", default=None, help="half-map 2 (omit: single-map mode)")
    parser.add_argument(
        "--aniso_file",
        default=None,
        help="FSC3D volume from 'spisonet.py fsc3d' (default: computed from the two half-maps)",
    )
    parser.add_argument("--mask", default=None, help="soft solvent mask (cube centres inside it)")
    parser.add_argument(
        "--limit_res",
        type=float,
        default=None,
        help="Å; inputs lowpassed here, beyond it the output keeps the input's data "
        "(default: FSC3D limit / global FSC=0.143 resolution)",
    )
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (0: predict only)")
    parser.add_argument("--alpha", type=float, default=1.0, help="weight of the equivariance loss")
    parser.add_argument(
        "--beta", type=float, default=0.5, help="weight of the cross-half (noise2noise) terms"
    )
    parser.add_argument("--output_dir", default="isonet_maps", help="output folder")
    parser.add_argument(
        "--gpuID", default=None, help="GPUs to use, e.g. 0,1,2,3 (default: all visible)"
    )
    parser.add_argument(
        "--acc_batches", type=int, default=2, help="micro-batches accumulated per optimizer step"
    )
    _flag(parser, "--independent", "train and predict each half from its own data only")
    parser.add_argument(
        "--reference", default=None, help="map whose low frequencies replace the halves'"
    )
    parser.add_argument(
        "--ref_resolution", type=float, default=10.0, help="Å; frequencies taken from --reference"
    )
    parser.add_argument(
        "--pretrained_model", default=None, help="model .pt to start from (--epochs 0: predict)"
    )
    parser.add_argument("--n_subvolume", type=int, default=1000, help="training cubes")
    parser.add_argument("--cube_size", type=int, default=64, help="training cube edge (voxels)")
    parser.add_argument(
        "--predict_crop_size", type=int, default=80, help="prediction tile edge (voxels)"
    )
    parser.add_argument(
        "--batch_size",
        type=int,
        default=None,
        help="cubes per optimizer step (default 4 on one device, else 2 × GPUs)",
    )
    parser.add_argument("--learning_rate", type=float, default=3e-4, help="AdamW learning rate")
    parser.add_argument("--ncpus", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="compute device"
    )
    _flag(parser, "--mixed_precision", "automatic mixed precision (CUDA only)")
    parser.add_argument("--net_width", type=int, default=64, help="U-Net base channels")
    parser.add_argument("--net_depth", type=int, default=3, help="U-Net levels (down-samplings)")
    parser.add_argument(
        "--norm",
        choices=("group", "batch", "none"),
        default="group",
        help="normalisation layer (group: exact under DDP and gradient accumulation)",
    )
    _flag(parser, "--compile", "torch.compile the network (opt-in)")
    _flag(parser, "--resume", "continue an interrupted run from <output_dir>/<model>.pt")
    parser.add_argument(
        "--voxel_size", type=float, default=None, help="Å; overrides the half-maps' header"
    )
    parser.add_argument(
        "--skip_metrics",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="do not compute the before/after anisotropy metrics of the report",
    )


def map_base(path: str) -> str:
    """File name without folder and map extension (``a/b/half_1.mrc`` → ``half_1``)."""
    return _MAP_SUFFIX.sub("", Path(path).name)


def common_model_name(bases: list[str]) -> str:
    """Common prefix of the half-maps' names (``emd_1_half_1``/``_2`` → ``emd_1_half``)."""
    if len(bases) == 1:
        return bases[0]
    prefix = []
    for a, b in zip(*bases):
        if a != b:
            break
        prefix.append(a)
    name = "".join(prefix).rstrip("_-. ")
    return name or "model"


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from spIsoNet.engine import EngineSettings, correct_maps
    from spIsoNet.engine.report import half_map_metrics, summary_lines, write_report
    from spIsoNet.errors import InputError
    from spIsoNet.io import check_same_grid, read_map, read_mask, write_map
    from spIsoNet.log import get_logger, setup_logging

    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(logging.INFO, log_file=out_dir / "reconstruct.log")
    log = get_logger("reconstruct")

    half1 = read_map(args.i1, voxel_size=args.voxel_size, what="half-map")
    halves = [half1]
    if args.i2 is not None:
        half2 = read_map(args.i2, voxel_size=args.voxel_size or half1.voxel_size, what="half-map")
        check_same_grid([half1, half2])
        halves.append(half2)
    voxel = half1.voxel_size
    mask = read_mask(args.mask, like=half1) if args.mask else None
    fsc3d = None
    if args.aniso_file:
        aniso = read_map(args.aniso_file, voxel_size=voxel, what="FSC3D")
        if aniso.data.shape != half1.data.shape:
            raise InputError(
                f"{args.aniso_file}: FSC3D shape {aniso.data.shape} differs from the half-maps' "
                f"{half1.data.shape}"
            )
        fsc3d = aniso.data
    reference = None
    if args.reference:
        ref = read_map(args.reference, voxel_size=voxel, what="reference")
        check_same_grid([half1, ref])
        reference = ref.data

    bases = [map_base(h.path) for h in halves]
    outputs = []
    inputs = {Path(h.path).resolve() for h in halves}
    for base in bases:
        pair = (out_dir / f"corrected_{base}.mrc", out_dir / f"corrected_{base}_filtered.mrc")
        for path in pair:
            if path.resolve() in inputs:
                raise InputError(f"{path}: output would overwrite an input map")
        outputs.append(pair)
    if len(bases) == 2 and bases[0] == bases[1]:
        raise InputError(f"{args.i2}: both half-maps are named {bases[0]}; outputs would collide")

    settings = EngineSettings(
        epochs=args.epochs,
        alpha=args.alpha,
        beta=args.beta,
        n_subvolume=args.n_subvolume,
        cube_size=args.cube_size,
        predict_crop_size=args.predict_crop_size,
        batch_size=args.batch_size,
        acc_batches=args.acc_batches,
        learning_rate=args.learning_rate,
        net_width=args.net_width,
        net_depth=args.net_depth,
        seed=args.seed,
        device=args.device,
        gpu_ids=args.gpuID,
        mixed_precision=args.mixed_precision,
        independent=args.independent,
        ncpus=args.ncpus,
        compile=args.compile,
        norm=args.norm,
        resume=args.resume,
    )
    if args.aniso_file is None:
        if len(halves) == 1:
            raise InputError("single-map mode needs --aniso_file (an FSC3D needs two half-maps)")
        log.info("no --aniso_file: the FSC3D will be computed from the half-maps with fsc3d")
    result = correct_maps(
        half1.data,
        halves[1].data if len(halves) == 2 else None,
        voxel,
        fsc3d_volume=fsc3d,
        limit_res=args.limit_res,
        mask=mask,
        settings=settings,
        output_dir=out_dir,
        pretrained_model=args.pretrained_model,
        model_name=common_model_name(bases),
        reference=reference,
        ref_resolution=args.ref_resolution,
    )
    if result.rank != 0:
        return 0
    for half, (final, filtered), corrected, raw in zip(
        halves, outputs, result.corrected, result.filtered
    ):
        write_map(filtered, raw, voxel, origin=half.origin)
        write_map(final, corrected, voxel, origin=half.origin)
        log.info("wrote %s and %s", final, filtered)

    report = {
        "command": "reconstruct",
        "inputs": {
            "half_maps": [h.path for h in halves],
            "mask": args.mask,
            "aniso_file": args.aniso_file,
            "reference": args.reference,
            "box": int(half1.box),
            "voxel_size": voxel,
        },
        "outputs": [str(p) for pair in outputs for p in pair]
        + [str(p) for p in result.model_paths]
        + [str(out_dir / "loss.png")],
        "settings": {k: v for k, v in vars(settings).items()},
        "device": result.device,
        "seed": result.seed,
        "limit_res": result.limit_res,
        "fsc3d_computed": result.fsc3d_computed,
        "timings": result.timings,
        "loss_history": result.loss_history,
        "loss_histories": result.loss_histories,
    }
    if len(halves) == 2 and not args.skip_metrics:
        import time

        started = time.perf_counter()
        report["metrics_input"] = half_map_metrics(half1.data, halves[1].data, voxel, mask)
        report["metrics_corrected"] = half_map_metrics(
            result.corrected[0], result.corrected[1], voxel, mask
        )
        report["timings"]["metrics"] = time.perf_counter() - started
        report["metrics_note"] = (
            "corrected halves were trained independently (gold-standard FSC)"
            if args.independent
            else "corrected halves share one network (noise2noise): their FSC is optimistic; "
            "use --independent for a gold-standard comparison"
        )
    write_report(out_dir / "report.json", report)
    for line in summary_lines(report):
        print(line)
    del np
    return 0
