"""``spisonet.py demo``: simulate a preferred-orientation case with known truth and correct it."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from spIsoNet.engine.settings import EngineSettings
from spIsoNet.errors import InputError

HELP = "simulate a preferred-orientation case with known ground truth, correct it, report"

DESCRIPTION = """\
Runs the whole method on a simulated case, without input files:
  1. simulates a protein-like ground truth and two independent half-maps from noisy Fourier
     slices of particles with preferred orientation (default: 10 000 particles per half, 90%
     viewing within 15 deg of z, the rest uniform), plus a soft mask;
  2. computes the FSC3D of the half-maps (spisonet.py fsc3d);
  3. corrects the half-maps with a CPU-sized network (spisonet.py reconstruct);
  4. prints the FSC to the ground truth before and after: resolution (FSC=0.5) in the worst and
     best of the directions (20 deg cones), globally, and the sphericity.
Writes to --output_dir: truth.mrc, half1.mrc, half2.mrc, mask.mrc, FSC3D.mrc,
corrected_half1.mrc, corrected_half2.mrc, the model, loss.png, demo_slices.png, demo_fsc.png,
demo_directional.png and demo_report.json. About 10 minutes on 2 CPU cores (--quick: < 1 min,
checks the path only).
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` options to ``parser``."""
    parser.add_argument("--output_dir", default="demo", help="folder for all outputs")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny case and network (box 40, 2 epochs): checks the whole path in < 1 minute",
    )
    parser.add_argument(
        "--fsc3d_only",
        action="store_true",
        help="stop after simulation, FSC3D and the input's metrics (no training)",
    )
    parser.add_argument("--box", type=_positive_int, default=None, help="box edge in voxels [64]")
    parser.add_argument("--seed", type=int, default=0, help="seed of simulation and training")
    parser.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="training epochs (default: 4, the published tool's CPU budget; 2 with --quick)",
    )
    parser.add_argument(
        "--n_particles", type=_positive_int, default=None, help="particles per half-map [10000]"
    )
    parser.add_argument(
        "--fraction_preferred",
        type=float,
        default=None,
        help="fraction of particles viewing within --cone_angle of z [0.9]; 0 = isotropic",
    )
    parser.add_argument(
        "--cone_angle", type=float, default=None, help="half-angle of the preferred cone, deg [15]"
    )
    parser.add_argument(
        "--snr", type=float, default=None, help="per-particle image SNR over the box [0.004]"
    )
    parser.add_argument(
        "--net_width",
        type=_positive_int,
        default=None,
        help=f"U-Net base channels (default: {EngineSettings.sized_default('net_width')})",
    )
    parser.add_argument(
        "--n_subvolume",
        type=_positive_int,
        default=None,
        help="training cubes per epoch "
        f"(default: {EngineSettings.sized_default('n_subvolume')}; 24 with --quick)",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--ncpus", type=_positive_int, default=None, help="CPU threads [all]")
    parser.add_argument("--no_figures", action="store_true", help="do not write the PNG figures")


def run(args: argparse.Namespace) -> int:
    """Check the options, build the demo settings and run the demo; returns the exit code."""
    from spIsoNet.demo import default_settings, run_demo
    from spIsoNet.log import get_logger, setup_logging

    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output_dir {out}: exists and is not a folder")
    if args.fraction_preferred is not None and not 0.0 <= args.fraction_preferred <= 1.0:
        raise InputError(f"--fraction_preferred {args.fraction_preferred}: must be in [0, 1]")
    if args.cone_angle is not None and not 0.0 < args.cone_angle <= 90.0:
        raise InputError(f"--cone_angle {args.cone_angle}: must be in (0, 90] degrees")
    if args.snr is not None and not args.snr > 0:
        raise InputError(f"--snr {args.snr}: must be positive")
    if args.box is not None and args.box < 32:
        raise InputError(f"--box {args.box}: must be at least 32 voxels")
    out.mkdir(parents=True, exist_ok=True)
    setup_logging(log_file=out / "demo.log")
    settings = default_settings(
        quick=args.quick,
        box=args.box,
        seed=args.seed,
        epochs=args.epochs,
        n_particles=args.n_particles,
        fraction_preferred=args.fraction_preferred,
        cone_angle=args.cone_angle,
        snr=args.snr,
        net_width=args.net_width,
        n_subvolume=args.n_subvolume,
        device=args.device,
        ncpus=args.ncpus,
    )
    from spIsoNet.engine import interrupt

    log = get_logger("demo")

    def line(signum: int) -> str:
        name = signal.Signals(signum).name
        return f"interrupted by {name}: the demo in {out} is incomplete (no demo_report.json)"

    with interrupt.handle_signals(on_timeout=lambda signum: log.error("%s", line(signum))):
        try:
            run_demo(out, settings, fsc3d_only=args.fsc3d_only, figures=not args.no_figures)
        except interrupt.Interrupted as exc:
            log.error("%s", line(exc.signum))
            return exc.exit_code
    return 0
