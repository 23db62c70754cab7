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

from spIsoNet.booleans import parse_bool
from spIsoNet.engine.settings import DEVICES, LR_SCHEDULES, NORMS, EngineSettings

HELP = "train the anisotropy-correction network on half-maps and write corrected maps"
DESCRIPTION = (
    "Train a 3D U-Net (noise2noise between the two half-maps, FSC3D-weighted consistency and "
    "rotation-equivariance losses) and write corrected half-maps. One half-map = single-map "
    "mode. Several GPUs: one process per GPU (DDP); several nodes: launch with "
    "'torchrun --nnodes N --nproc_per_node G bin/spisonet.py reconstruct ...'."
)

_MAP_SUFFIX = re.compile(r"(\.(mrc|map|mrcs|rec|ccp4))(\.(gz|bz2))?$", re.IGNORECASE)


#: EngineSettings field → its command-line flag (the CLI's vocabulary in engine messages; the
#: argparse destination is the flag without its dashes)
CLI_NAMES: dict[str, str] = {
    "epochs": "--epochs",
    "alpha": "--alpha",
    "beta": "--beta",
    "n_subvolume": "--n_subvolume",
    "cube_size": "--cube_size",
    "predict_crop_size": "--predict_crop_size",
    "batch_size": "--batch_size",
    "acc_batches": "--acc_batches",
    "learning_rate": "--learning_rate",
    "lr_schedule": "--lr_schedule",
    "net_width": "--net_width",
    "net_depth": "--net_depth",
    "seed": "--seed",
    "device": "--device",
    "gpu_ids": "--gpuID",
    "mixed_precision": "--mixed_precision",
    "independent": "--independent",
    "ncpus": "--ncpus",
    "compile": "--compile",
    "norm": "--norm",
    "resume": "--resume",
    "time_limit": "--time_limit",
    "keep_measured": "--keep_measured",
    "fourier_crop": "--fourier_crop",
}
#: the engine's defaults: the command line shows and uses these (one home: EngineSettings)
_ENGINE = EngineSettings()
#: names of the inputs of correct_maps in messages (its other arguments)
INPUT_NAMES: dict[str, str] = {"limit_res": "--limit_res", "pretrained_model": "--pretrained_model"}


def _bool(value: str) -> bool:
    try:
        return parse_bool(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}") from None


def _flag(parser, name: str, help_text: str, default: bool | None = False) -> None:
    # Accepts both "--flag" and the published "--flag True/False".
    parser.add_argument(
        name, type=_bool, nargs="?", const=True, default=default, metavar="BOOL", help=help_text
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``reconstruct`` (names and defaults of the published tool)."""
    parser.add_argument("i1", help="half-map 1 (MRC)")
    parser.add_argument("i2", nargs="?", default=None, help="half-map 2 (omit: single-map mode)")
    parser.add_argument(
        "--aniso_file",
        default=None,
        help="FSC3D volume from 'spisonet.py fsc3d' (default: computed from the two half-maps)",
    )
    parser.add_argument(
        "--mask",
        default=None,
        help="soft solvent mask: training cubes are centred inside it (default: none, whole box)",
    )
    parser.add_argument(
        "--limit_res",
        type=float,
        default=None,
        help="Å; inputs lowpassed here, beyond it the output keeps the input's data; between "
        "Nyquist and the box edge (default: the half-maps' global FSC=0.143 resolution; Nyquist "
        "in single-map mode)",
    )
    parser.add_argument(
        "--epochs", type=int, default=_ENGINE.epochs, help="training epochs (0: predict only)"
    )
    parser.add_argument(
        "--alpha", type=float, default=_ENGINE.alpha, help="weight of the equivariance loss"
    )
    parser.add_argument(
        "--beta",
        type=float,
        default=_ENGINE.beta,
        help="weight of the cross-half (noise2noise) terms",
    )
    parser.add_argument("--output_dir", default="isonet_maps", help="output folder")
    parser.add_argument(
        "--gpuID",
        default=None,
        help="GPUs to use, e.g. 0,1,2,3; one process each (default: all visible)",
    )
    parser.add_argument(
        "--acc_batches",
        type=int,
        default=_ENGINE.acc_batches,
        help="micro-batches accumulated per optimizer step",
    )
    _flag(parser, "--independent", "train and predict each half from its own data only")
    parser.add_argument(
        "--reference",
        default=None,
        help="map whose low frequencies replace the halves' (default: none)",
    )
    parser.add_argument(
        "--ref_resolution", type=float, default=10.0, help="Å; frequencies taken from --reference"
    )
    parser.add_argument(
        "--pretrained_model",
        default=None,
        help="model .pt to start from; with --epochs 0: predict only (default: none, a new model)",
    )
    parser.add_argument(
        "--n_subvolume",
        type=int,
        default=None,
        help=f"training cubes (default: {_ENGINE.sized_default('n_subvolume')})",
    )
    parser.add_argument(
        "--cube_size",
        type=int,
        default=None,
        help=f"training cube edge (voxels) (default: {_ENGINE.sized_default('cube_size')})",
    )
    parser.add_argument(
        "--predict_crop_size",
        type=int,
        default=None,
        help="prediction tile edge (voxels) "
        f"(default: {_ENGINE.sized_default('predict_crop_size')})",
    )
    parser.add_argument(
        "--batch_size",
        type=int,
        default=None,
        help="cubes per optimizer step (default: 4 with one process, else 2 × processes)",
    )
    parser.add_argument(
        "--learning_rate",
        type=float,
        default=_ENGINE.learning_rate,
        help=f"AdamW (peak) learning rate (default: {_ENGINE.sized_default('learning_rate')})",
    )
    parser.add_argument(
        "--lr_schedule",
        choices=LR_SCHEDULES,
        default=_ENGINE.lr_schedule,
        help="learning rate over the planned steps: constant, or cosine (warm-up over 5 %% of "
        "the steps, then a cosine decay to 10 %% of --learning_rate)",
    )
    parser.add_argument(
        "--ncpus",
        type=int,
        default=None,
        help="CPU threads, at most the cores this process may use (default: OMP_NUM_THREADS if "
        "set, else every core of the CPU affinity mask)",
    )
    parser.add_argument(
        "--time_limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop training after this many seconds (after the current step; prediction still "
        "runs) (default: no limit)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--device", choices=DEVICES, default=_ENGINE.device, help="compute device")
    _flag(
        parser,
        "--mixed_precision",
        "bfloat16 autocast (default: auto, on where the device computes bfloat16 natively: GPUs "
        "with bf16, CPUs with AMX / AVX-512 BF16; True also uses float16 on older GPUs; False: "
        "float32)",
        default=_ENGINE.mixed_precision,
    )
    parser.add_argument(
        "--net_width",
        type=int,
        default=None,
        help=f"U-Net base channels (default: {_ENGINE.sized_default('net_width')})",
    )
    parser.add_argument(
        "--net_depth", type=int, default=_ENGINE.net_depth, help="U-Net levels (down-samplings)"
    )
    parser.add_argument(
        "--norm",
        choices=NORMS,
        default=_ENGINE.norm,
        help="normalisation layer (group: exact under DDP and gradient accumulation)",
    )
    parser.add_argument(
        "--keep_measured",
        type=_bool,
        nargs="?",
        const=True,
        default=_ENGINE.keep_measured,
        metavar="BOOL",
        help="data-consistency step: keep the input wherever it clearly beats the network on a "
        "Fourier component (default: %(default)s; False = replace the whole band within "
        "--limit_res, as the published tool)",
    )
    _flag(
        parser,
        "--fourier_crop",
        "train and predict on the maps Fourier-cropped to the smallest grid holding --limit_res "
        "(opt-in; measured in docs/benchmarks.md)",
        default=_ENGINE.fourier_crop,
    )
    _flag(parser, "--compile", "torch.compile the network (opt-in)")
    _flag(parser, "--resume", "continue an interrupted run from <output_dir>/<model>.pt")
    parser.add_argument(
        "--voxel_size",
        type=float,
        default=None,
        help="Å; overrides the half-maps' header (default: the header's)",
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
    """Return the half-maps' common name prefix (``emd_1_half_1``/``_2`` → ``emd_1_half``)."""
    if len(bases) == 1:
        return bases[0]
    prefix = []
    for a, b in zip(*bases):
        if a != b:
            break
        prefix.append(a)
    name = "".join(prefix).rstrip("_-. ")
    return name or "model"


def engine_settings(args: argparse.Namespace):
    """Build the :class:`~spIsoNet.engine.EngineSettings` of the command line (checked).

    Progress bars only on a terminal; a log file gets the periodic progress lines instead.
    """
    import sys

    from spIsoNet.engine.settings import EngineSettings

    values = {field: getattr(args, flag.lstrip("-")) for field, flag in CLI_NAMES.items()}
    settings = EngineSettings.from_mapping({**values, "show_progress": sys.stderr.isatty()})
    settings.validate(names=CLI_NAMES)
    return settings


def run(args: argparse.Namespace) -> int:
    """Read the maps, correct them, write the outputs as one set; return the exit code."""
    from spIsoNet.cli.common import make_output_dir, remove_if_empty
    from spIsoNet.cli.reconstruct_report import summary_lines, write_report
    from spIsoNet.engine import correct_maps, interrupt
    from spIsoNet.engine.device import launcher_env
    from spIsoNet.engine.plots import LossPlot
    from spIsoNet.errors import InputError
    from spIsoNet.fsc3d import anisotropy_summary
    from spIsoNet.io import (
        check_same_grid,
        output_set,
        read_map,
        read_mask,
        require_contrast,
        write_map,
    )
    from spIsoNet.log import get_logger, setup_logging
    from spIsoNet.timing import stage_timer

    setup_logging(logging.INFO)
    log = get_logger("reconstruct")
    settings = engine_settings(args)

    half1 = read_map(args.i1, voxel_size=args.voxel_size, what="half-map")
    halves = [half1]
    if args.i2 is not None:
        half2 = read_map(args.i2, voxel_size=args.voxel_size or half1.voxel_size, what="half-map")
        check_same_grid([half1, half2])
        halves.append(half2)
    require_contrast(halves)
    voxel = half1.voxel_size
    settings.validate(box=int(half1.box), names=CLI_NAMES)
    mask = read_mask(args.mask, like=half1) if args.mask else None
    fsc3d = None
    if args.aniso_file:
        fsc3d = read_map(args.aniso_file, voxel_size=voxel, what="FSC3D").data
    reference = None
    if args.reference:
        ref = read_map(args.reference, voxel_size=voxel, what="reference")
        check_same_grid([half1, ref])
        reference = ref.data

    out_dir = Path(args.output_dir)
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
    names = {**CLI_NAMES, **INPUT_NAMES}
    if args.aniso_file:
        names["fsc3d_volume"] = f"--aniso_file {args.aniso_file}"

    launch = launcher_env()  # torchrun's RANK/WORLD_SIZE..., read here at the edge
    created = make_output_dir(out_dir)
    log_path = out_dir / "reconstruct.log"
    had_log = log_path.exists()
    setup_logging(logging.INFO, log_file=log_path)
    model_name = common_model_name(bases)
    checkpoints = [out_dir / f"{name}.pt" for name in _model_names(model_name, args, len(halves))]

    def stuck(signum: int) -> None:  # the watchdog ends the process: say so, leave no temporary
        log.error("%s", _interrupted_line(signum, checkpoints))
        _remove_temporaries(out_dir)

    if args.aniso_file is None and len(halves) == 2:
        log.info("no --aniso_file: the FSC3D will be computed from the half-maps with fsc3d")
    with interrupt.handle_signals(on_timeout=stuck):
        try:
            try:
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
                    model_name=model_name,
                    reference=reference,
                    ref_resolution=args.ref_resolution,
                    names=names,
                    launch=launch,
                    loss_plot=LossPlot(out_dir / "loss.png"),
                )
            except InputError:
                # rejected before any output: leave the folder as it was (no empty folder, no log)
                setup_logging(logging.INFO)
                if not had_log:
                    log_path.unlink(missing_ok=True)
                remove_if_empty(created)
                raise
            if result.rank != 0:
                return 0
            with output_set() as staged:  # the maps and the report: all of them or none
                for half, (final, filtered), corrected, raw in zip(
                    halves, outputs, result.corrected, result.filtered
                ):
                    interrupt.check()
                    write_map(filtered, raw, voxel, origin=half.origin, outputs=staged)
                    write_map(final, corrected, voxel, origin=half.origin, outputs=staged)
                report = _report(args, halves, outputs, result, settings, out_dir)
                if len(halves) == 2 and not args.skip_metrics:
                    with stage_timer(report["timings"], "metrics"):
                        before = anisotropy_summary(half1.data, halves[1].data, voxel, mask=mask)
                        after = anisotropy_summary(
                            result.corrected[0], result.corrected[1], voxel, mask=mask
                        )
                        report["metrics_input"] = before.to_json()
                        report["metrics_corrected"] = after.to_json()
                    report["metrics_note"] = (
                        "corrected halves were trained independently (gold-standard FSC)"
                        if args.independent
                        else "corrected halves share one network (noise2noise): their FSC is "
                        "optimistic; use --independent for a gold-standard comparison"
                    )
                interrupt.check()
                with staged.stage(out_dir / "report.json") as tmp:
                    write_report(tmp, report)
        except interrupt.Interrupted as exc:
            log.error("%s", _interrupted_line(exc.signum, checkpoints))
            return exc.exit_code
    for pair in outputs:
        log.info("wrote %s and %s", *pair)
    for line in summary_lines(report):
        print(line)
    return 0


def _model_names(model_name: str, args: argparse.Namespace, n_halves: int) -> list[str]:
    if args.independent and n_halves == 2:
        return [f"{model_name}_half1", f"{model_name}_half2"]
    return [model_name]


def _interrupted_line(signum: int, checkpoints: list[Path]) -> str:
    """Say in one line which signal stopped the run, what was kept and how to continue."""
    import signal

    kept = [str(p) for p in checkpoints if p.is_file()]
    name = signal.Signals(signum).name
    if not kept:
        return f"interrupted by {name} before the first epoch ended: no outputs written"
    return (
        f"interrupted by {name}: no maps written; the checkpoint of the last finished epoch is "
        f"kept ({', '.join(kept)}); rerun with --resume to continue"
    )


def _remove_temporaries(folder: Path) -> None:
    """Temporaries of atomic writes (``.<name>.*.tmp``) left by a process ended from outside."""
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _report(args, halves, outputs, result, settings, out_dir: Path) -> dict:
    """Assemble the run report (``report.json``) without the before/after metrics."""
    return {
        "command": "reconstruct",
        "inputs": {
            "half_maps": [h.path for h in halves],
            "mask": args.mask,
            "aniso_file": args.aniso_file,
            "reference": args.reference,
            "box": int(halves[0].box),
            "voxel_size": halves[0].voxel_size,
        },
        "outputs": [str(p) for pair in outputs for p in pair]
        + [str(p) for p in result.model_paths]
        + [str(out_dir / "loss.png")],
        "settings": settings.as_plain(),
        "device": result.device,
        "seed": result.seed,
        "limit_res": result.limit_res,
        "fsc3d_computed": result.fsc3d_computed,
        "timings": result.timings,
        "loss_history": result.loss_history,
        "loss_histories": result.loss_histories,
    }
