#!/usr/bin/env python3
"""Regenerate the README figures in this folder by running the demo (`spisonet.py demo` code).

Usage (from the repository root)::

    python figures/make_figures.py [--seed 0] [--workdir /tmp/spisonet_figures]

Runs :func:`spIsoNet.demo.run_demo` with the default demo settings in a scratch folder, then copies
its figures here as ``demo_slices.png``, ``demo_fsc.png``, ``demo_directional.png`` and the training
loss curve ``demo_loss.png``, plus ``demo_report.json`` (the numbers the README quotes). About 10
minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # works from a source checkout without installing

from spIsoNet.demo import default_settings, run_demo  # noqa: E402
from spIsoNet.log import setup_logging  # noqa: E402

FIGURES = ("demo_slices.png", "demo_fsc.png", "demo_directional.png")


def main(argv: list[str] | None = None) -> int:
    """Run the demo in the work folder and copy its figures and report here.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 when the demo report has the corrected maps' numbers, 1 otherwise.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="demo seed")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args(argv)
    setup_logging()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="spisonet_figures_"))
    report = run_demo(work, default_settings(seed=args.seed))
    for name in FIGURES:
        shutil.copyfile(work / name, HERE / name)
    loss = work / "loss.png"
    if loss.is_file():
        shutil.copyfile(loss, HERE / "demo_loss.png")
    shutil.copyfile(work / "demo_report.json", HERE / "demo_report.json")
    print(f"figures written to {HERE} (demo outputs in {work})")
    return 0 if report.get("after") else 1


if __name__ == "__main__":
    sys.exit(main())
