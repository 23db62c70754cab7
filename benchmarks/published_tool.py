#!/usr/bin/env python3
"""Run the published spIsoNet (unmodified, on the CPU) on half-maps, for side-by-side benchmarks.

The published tool is a separate checkout with its own Python environment (it is not part of
this project and nothing of it is copied here): by default ``/work/published/spIsoNet`` (a
work tree of github.com/IsoNet-cryoET/spIsoNet) and ``/work/published/venv/bin/python`` (a
venv with ``--system-site-packages`` that adds what the tool needs: ``fire``, ``scikit-image``,
``tqdm``), overridable with ``SPISONET_PUBLISHED`` / ``SPISONET_PUBLISHED_PYTHON`` or the
arguments. It is written for CUDA; ``benchmarks/published_cpu/sitecustomize.py`` (our own shim,
put first on ``PYTHONPATH``) makes it run on the CPU without touching its files.

The two commands are those of the published tutorial, with this project's benchmark budget::

    spisonet.py fsc3d half1.mrc half2.mrc mask.mrc --limit_res L --ncpus T
    spisonet.py reconstruct half1.mrc half2.mrc --aniso_file FSC3D.mrc --mask mask.mrc \
        --limit_res L --epochs 4 --n_subvolume 200 --cube_size 32 --predict_crop_size 48 \
        --batch_size 4 --acc_batches 1 --alpha 1 --beta 0.5 --output_dir isonet_maps

run in ``workdir`` (``python <checkout>/spIsoNet/bin/spisonet.py ...``). The corrected halves
are ``isonet_maps/corrected_half1.mrc`` and ``corrected_half2.mrc``: the network's output
below ``limit_res`` combined with the input above it by the tool's own ``combine_map`` step
(``corrected_half*_filtered.mrc`` is the network output alone).

Differences from this project's ``reconstruct`` that are the published tool's own, not chosen
here: its network is fixed at width 64 (``Net(filter_base=64, unet_depth=3)``: channels 64, 128,
256, 320, BatchNorm, 3 convolutions per block; the command line has no width option), its
learning rate is 3e-4, it has no seed option (``seed`` here seeds Python, NumPy and torch
through the shim, see its docstring) and it spawns one training process (world size 1).

Usage::

    python benchmarks/published_tool.py half1.mrc half2.mrc mask.mrc --limit_res 6.9 \
        --workdir /tmp/published_run [--epochs 4 --n_subvolume 200 --seed 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHIM_DIR = Path(__file__).resolve().parent / "published_cpu"
DEFAULT_CHECKOUT = "/work/published/spIsoNet"
DEFAULT_PYTHON = "/work/published/venv/bin/python"


class PublishedToolError(RuntimeError):
    """The published tool is missing or one of its commands failed (one line)."""


class PublishedRun(NamedTuple):
    """Result of :func:`run_published`."""

    corrected_half1: np.ndarray
    """float32 ``[n, n, n]``: the published tool's corrected half-map 1."""
    corrected_half2: np.ndarray
    """float32 ``[n, n, n]``: the published tool's corrected half-map 2."""
    seconds: dict
    """Wall seconds: ``fsc3d``, ``reconstruct`` and ``total`` (both commands, start-up included)."""
    log_path: Path
    """Combined stdout/stderr of both commands, with the command lines."""


def published_paths(
    checkout: str | os.PathLike | None = None, python: str | os.PathLike | None = None
) -> tuple[Path, Path]:
    """Resolve and check the published checkout and its Python.

    Parameters
    ----------
    checkout, python
        Paths; default ``$SPISONET_PUBLISHED`` / ``$SPISONET_PUBLISHED_PYTHON``, else
        ``/work/published/spIsoNet`` / ``/work/published/venv/bin/python``.

    Returns
    -------
    (checkout, python)
        The published work tree (holding ``spIsoNet/bin/spisonet.py``) and its interpreter.

    Raises
    ------
    PublishedToolError
        Either is missing (the message says how to set it up).
    """
    root = Path(checkout or os.environ.get("SPISONET_PUBLISHED") or DEFAULT_CHECKOUT)
    exe = Path(python or os.environ.get("SPISONET_PUBLISHED_PYTHON") or DEFAULT_PYTHON)
    if not (root / "spIsoNet" / "bin" / "spisonet.py").is_file():
        raise PublishedToolError(
            f"{root}: no published spIsoNet checkout (spIsoNet/bin/spisonet.py missing); "
            "extract it there or set SPISONET_PUBLISHED"
        )
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        raise PublishedToolError(
            f"{exe}: no Python for the published spIsoNet (create a venv with "
            "--system-site-packages and pip install fire scikit-image tqdm, "
            "or set SPISONET_PUBLISHED_PYTHON)"
        )
    return root, exe


def default_threads() -> int:
    """Threads for the published tool: ``$OMP_NUM_THREADS``, else the CPUs this process may use."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0))


def published_env(checkout: Path, threads: int, seed: int | None = None) -> dict:
    """Environment for the published tool: the shim and the checkout on ``PYTHONPATH``.

    The caller's ``PYTHONPATH`` is dropped on purpose: this project's package has the same name
    (``spIsoNet``) and must not shadow the published one.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SHIM_DIR), str(checkout)])
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    env["MPLBACKEND"] = "Agg"
    env.pop("SPISONET_CPU_SHIM_SEED", None)
    if seed is not None:
        env["SPISONET_CPU_SHIM_SEED"] = str(int(seed))
    return env


def _run_logged(cmd: list[str], cwd: Path, env: dict, log, timeout: float | None) -> float:
    """Run ``cmd`` with output appended to ``log``; return wall seconds or raise one line."""
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise PublishedToolError(
            f"published {cmd[2]} ran past {timeout:g} s (log: {log.name})"
        ) from None
    seconds = time.perf_counter() - started
    log.write(f"# exit {proc.returncode} after {seconds:.1f} s\n")
    log.flush()
    if proc.returncode != 0:
        raise PublishedToolError(
            f"published {cmd[2]} failed with exit {proc.returncode} (log: {log.name}): "
            f"{_last_line(Path(log.name))}"
        )
    return seconds


def _last_line(path: Path) -> str:
    """Last non-empty line of a log before our exit marker (the error, usually)."""
    lines = [s for s in path.read_text(errors="replace").splitlines() if s.strip()]
    lines = [s for s in lines if not s.startswith("# exit")]
    return lines[-1].strip() if lines else "(no output)"


def run_published(
    half1: np.ndarray,
    half2: np.ndarray,
    mask: np.ndarray | None,
    voxel_size: float,
    workdir: str | os.PathLike,
    *,
    limit_res: float,
    epochs: int = 4,
    n_subvolume: int = 200,
    cube_size: int = 32,
    predict_crop_size: int = 48,
    batch_size: int = 4,
    acc_batches: int = 1,
    alpha: float = 1.0,
    beta: float = 0.5,
    seed: int | None = None,
    threads: int | None = None,
    checkout: str | os.PathLike | None = None,
    python: str | os.PathLike | None = None,
    timeout: float | None = None,
) -> PublishedRun:
    """Correct two half-maps with the published spIsoNet (``fsc3d`` then ``reconstruct``).

    Parameters
    ----------
    half1, half2
        Half-maps, float ``[n, n, n]`` (z, y, x).
    mask
        Soft mask ``[n, n, n]`` in [0, 1], or None (the published tool then uses no mask).
    voxel_size
        Å per voxel (written to the MRC headers; the tool reads it from there).
    workdir
        Folder for the inputs, ``FSC3D.mrc``, ``isonet_maps/`` and ``published.log``
        (created; existing files of a previous run are overwritten).
    limit_res
        Å; passed to both ``fsc3d --limit_res`` and ``reconstruct --limit_res``.
    epochs, n_subvolume, cube_size, predict_crop_size, batch_size, acc_batches, alpha, beta
        The published ``reconstruct`` options of the same names.
    seed
        Seed of Python, NumPy and torch in every process of the tool (through the shim); None:
        unseeded, as the published tool is.
    threads
        ``OMP_NUM_THREADS`` for the tool and ``fsc3d --ncpus`` (default :func:`default_threads`).
    checkout, python
        See :func:`published_paths`.
    timeout
        Seconds allowed per command (None: no limit).

    Returns
    -------
    PublishedRun
        The two corrected halves (float32 ``[n, n, n]``), wall seconds per command and the log.

    Raises
    ------
    PublishedToolError
        Missing checkout or Python, a failed or timed-out command, or missing outputs.
    """
    from spIsoNet.io.mrc import read_map, write_map

    root, exe = published_paths(checkout, python)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    threads = int(threads or default_threads())
    write_map(work / "half1.mrc", half1, voxel_size)
    write_map(work / "half2.mrc", half2, voxel_size)
    if mask is not None:
        write_map(work / "mask.mrc", mask, voxel_size)
    script = str(root / "spIsoNet" / "bin" / "spisonet.py")
    limit = repr(float(limit_res))
    mask_arg = ["mask.mrc"] if mask is not None else []
    fsc3d_cmd = [str(exe), script, "fsc3d", "half1.mrc", "half2.mrc", *mask_arg]
    fsc3d_cmd += ["--limit_res", limit, "--ncpus", str(threads)]
    recon_cmd = [str(exe), script, "reconstruct", "half1.mrc", "half2.mrc"]
    recon_cmd += ["--aniso_file", "FSC3D.mrc"]
    recon_cmd += ["--mask", "mask.mrc"] if mask is not None else []
    options = {
        "limit_res": limit,
        "epochs": epochs,
        "n_subvolume": n_subvolume,
        "cube_size": cube_size,
        "predict_crop_size": predict_crop_size,
        "batch_size": batch_size,
        "acc_batches": acc_batches,
        "alpha": alpha,
        "beta": beta,
        "output_dir": "isonet_maps",
    }
    for key, value in options.items():
        recon_cmd += [f"--{key}", str(value)]
    env = published_env(root, threads, seed)
    log_path = work / "published.log"
    seconds = {}
    with open(log_path, "w") as log:
        log.write(f"# threads {threads}, seed {seed}, PYTHONPATH={env['PYTHONPATH']}\n")
        seconds["fsc3d"] = _run_logged(fsc3d_cmd, work, env, log, timeout)
        seconds["reconstruct"] = _run_logged(recon_cmd, work, env, log, timeout)
    seconds["total"] = seconds["fsc3d"] + seconds["reconstruct"]
    outputs = [work / "isonet_maps" / f"corrected_half{k}.mrc" for k in (1, 2)]
    for path in outputs:
        if not path.is_file():
            raise PublishedToolError(f"{path}: the published reconstruct wrote no such map")
    maps = [read_map(p, voxel_size=voxel_size, what="published output").data for p in outputs]
    return PublishedRun(maps[0], maps[1], seconds, log_path)


def main(argv: list[str] | None = None) -> int:
    """Command line: correct MRC half-maps with the published tool and print where they are.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 with one line on stderr if the tool is missing or fails.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("half1")
    parser.add_argument("half2")
    parser.add_argument("mask", nargs="?", default=None)
    parser.add_argument("--limit_res", type=float, required=True, help="Å")
    parser.add_argument("--workdir", default="published_run", help="scratch/output folder")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--n_subvolume", type=int, default=200)
    parser.add_argument("--cube_size", type=int, default=32)
    parser.add_argument("--predict_crop_size", type=int, default=48)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--acc_batches", type=int, default=1)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--beta", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=None, help="seed through the shim")
    parser.add_argument("--threads", type=int, default=None, help="default: OMP_NUM_THREADS")
    parser.add_argument("--checkout", default=None, help=f"default: {DEFAULT_CHECKOUT}")
    parser.add_argument("--python", default=None, help=f"default: {DEFAULT_PYTHON}")
    args = parser.parse_args(argv)
    from spIsoNet.errors import InputError
    from spIsoNet.io.mrc import read_map

    try:
        published_paths(args.checkout, args.python)
        h1 = read_map(args.half1, what="half-map")
        h2 = read_map(args.half2, what="half-map")
        mask = read_map(args.mask, what="mask").data if args.mask else None
        run = run_published(
            h1.data,
            h2.data,
            mask,
            h1.voxel_size,
            args.workdir,
            limit_res=args.limit_res,
            epochs=args.epochs,
            n_subvolume=args.n_subvolume,
            cube_size=args.cube_size,
            predict_crop_size=args.predict_crop_size,
            batch_size=args.batch_size,
            acc_batches=args.acc_batches,
            alpha=args.alpha,
            beta=args.beta,
            seed=args.seed,
            threads=args.threads,
            checkout=args.checkout,
            python=args.python,
        )
    except (PublishedToolError, InputError) as exc:
        print(f"published_tool: {exc}", file=sys.stderr)
        return 2
    maps = Path(args.workdir) / "isonet_maps"
    print(f"corrected: {maps / 'corrected_half1.mrc'} {maps / 'corrected_half2.mrc'}")
    print(", ".join(f"{k} {v:.1f} s" for k, v in run.seconds.items()) + f"; log {run.log_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
