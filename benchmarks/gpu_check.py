"""GPU check of the correction engine: every CUDA code path once, with throughput and memory.

Usage::

    python benchmarks/gpu_check.py                 # on a GPU machine (< 5 minutes on one GPU)
    python benchmarks/gpu_check.py --device cpu    # tiny CPU dry run: checks the script itself
    python benchmarks/gpu_check.py --json gpu.json # also write the numbers as JSON

On CUDA it runs, with the default width-64, depth-3 U-Net on 64³ training cubes of a synthetic
pair of 128³ half-maps (through the public API, :func:`spIsoNet.engine.correct_maps` and
:class:`spIsoNet.engine.EngineSettings`):

1. training in float32 (``mixed_precision=False``);
2. training with AMP in bfloat16 (the engine's choice where the GPU supports it);
3. training with AMP in float16 + gradient scaling (forced by reporting bf16 as unsupported,
   the path the engine takes on GPUs without bfloat16);
4. gradient accumulation (``acc_batches=2``) with AMP;
5. prediction only (``epochs=0`` from the model of 1), float32 and AMP;
6. the spawned DDP path with NCCL (one process per GPU; needs ≥ 2 GPUs, since NCCL allows one
   rank per GPU — skipped with a message on one GPU);
7. ``torchrun --standalone --nproc_per_node 1 bin/spisonet.py reconstruct ...`` (NCCL process
   group of one rank, the CLI end to end).

It prints for each: samples/s (training cubes per second), tiles/s (prediction tiles per
second, where the tile count is known) and the peak GPU memory (``max_memory_allocated`` of this
process; the child processes of 6 and 7 are not counted). Any failure prints
``FAIL <check>: <reason>`` (with its traceback on stderr), the other checks still run, and the
exit code is 1. With ``--device cpu`` the same sequence runs on a tiny network on the CPU
(spawned DDP with two gloo processes, torchrun with gloo), so that the script is known to work
before a GPU is at hand. Needs torch, numpy, mrcfile and starfile (and spIsoNet).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass
class Profile:
    """Sizes of one run of the check (GPU: the engine's defaults; CPU: a tiny dry run)."""

    device: str
    box: int
    net_width: int
    net_depth: int
    cube_size: int
    predict_crop_size: int
    batch_size: int
    n_subvolume: int
    n_conv: int | None = None  # None: the engine's default
    extra: dict = field(default_factory=dict)


GPU_PROFILE = Profile("cuda", box=128, net_width=64, net_depth=3, cube_size=64,
                      predict_crop_size=80, batch_size=4, n_subvolume=128)  # fmt: skip
CPU_PROFILE = Profile("cpu", box=32, net_width=4, net_depth=2, cube_size=16,
                      predict_crop_size=16, batch_size=2, n_subvolume=4, n_conv=1,
                      extra={"ncpus": 1})  # fmt: skip


def synthetic_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 ``n³`` half-maps: a shared smooth signal plus independent noise."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n) * n
    kx = np.arange(n // 2 + 1)
    r = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + kx[None, None, :] ** 2)
    shape = r.shape
    signal = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * np.exp(
        -((r / (0.25 * n)) ** 2)
    )
    halves = []
    for _ in range(2):
        noise = 0.05 * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
        halves.append(np.fft.irfftn(signal + noise, s=(n, n, n), axes=(0, 1, 2)))
    return halves[0].astype(np.float32), halves[1].astype(np.float32)


@contextlib.contextmanager
def bf16_reported_unsupported():
    """Make ``torch.cuda.is_bf16_supported()`` answer False (forces the engine's float16 path)."""
    import torch

    real = torch.cuda.is_bf16_supported
    torch.cuda.is_bf16_supported = lambda *args, **kwargs: False
    try:
        yield
    finally:
        torch.cuda.is_bf16_supported = real


class Checker:
    """Runs the checks, prints one line per check, remembers failures."""

    def __init__(self, profile: Profile, folder: Path, quick: bool = False) -> None:
        import torch

        from spIsoNet.fsc3d import compute_fsc3d

        self.torch = torch
        self.profile = profile
        self.folder = folder
        self.results: list[dict] = []
        self.failures: list[str] = []
        self.cuda = profile.device == "cuda"
        self.quick = quick
        self.half1, self.half2 = synthetic_halves(profile.box)
        # one FSC3D for every run (the engine would compute the same one in each)
        self.fsc3d = compute_fsc3d(self.half1, self.half2, 2.0).volume
        self.model_path: str | None = None

    # -------------------------------------------------------------------------------- helpers
    def settings(self, **overrides):
        """Build the profile's ``EngineSettings`` (1 epoch) with ``overrides`` applied."""
        from spIsoNet.engine import EngineSettings

        p = self.profile
        values = dict(epochs=1, n_subvolume=p.n_subvolume, cube_size=p.cube_size,
                      predict_crop_size=p.predict_crop_size, batch_size=p.batch_size,
                      acc_batches=1, net_width=p.net_width, net_depth=p.net_depth,
                      device=p.device, show_progress=False, seed=1, mixed_precision=False,
                      **p.extra)  # fmt: skip
        if p.n_conv is not None:
            values["n_conv"] = p.n_conv
        values.update(overrides)
        return EngineSettings(**values)

    def _tiles_per_map(self, settings) -> int | None:
        """Prediction tiles per map, from the engine's own tiling (None if that moved)."""
        try:
            from spIsoNet.engine.plan import prediction_tiling
            from spIsoNet.engine.predict import tile_layout

            grid = 2**settings.net_depth
            tile, overlap = prediction_tiling(settings, SimpleNamespace(multiple=grid))
            return len(tile_layout(self.profile.box, tile, overlap, grid)[2]) ** 3
        except Exception:  # internal names: only for the tiles/s column
            return None

    def _peak_reset(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()

    def _peak_gib(self) -> float | None:
        if not self.cuda:
            return None
        self.torch.cuda.synchronize()
        return self.torch.cuda.max_memory_allocated() / 2**30

    def record(self, name: str, **numbers) -> None:
        """Keep a passed check's numbers and print its line (samples/s, tiles/s, GiB, s)."""
        row = {"check": name, "status": "ok", **numbers}
        self.results.append(row)
        parts = [f"{'ok':<4} {name:<34}"]
        for key, unit in (("samples_per_s", "samples/s"), ("tiles_per_s", "tiles/s"),
                          ("peak_gib", "GiB peak"), ("seconds", "s")):  # fmt: skip
            value = numbers.get(key)
            if value is not None:
                parts.append(f"{value:9.3f} {unit}")
        if numbers.get("note"):
            parts.append(str(numbers["note"]))
        print("  ".join(parts), flush=True)

    def skip(self, name: str, reason: str) -> None:
        """Record and print a check that cannot run here, with the reason."""
        self.results.append({"check": name, "status": "skipped", "reason": reason})
        print(f"{'skip':<4} {name:<34}  {reason}", flush=True)

    def run(self, name: str, function) -> None:
        """Call ``function()``; a failure is recorded and printed, and the next check runs."""
        try:
            function()
        except BaseException as exc:  # a check must never stop the others
            if isinstance(exc, KeyboardInterrupt):
                raise
            reason = " ".join(str(exc).split()) or type(exc).__name__
            self.failures.append(name)
            self.results.append({"check": name, "status": "failed", "reason": reason})
            traceback.print_exc(file=sys.stderr)
            print(f"FAIL {name}: {type(exc).__name__}: {reason[:300]}", flush=True)

    # -------------------------------------------------------------------------------- checks
    def correct(self, name: str, settings, *, pretrained: str | None = None, save: bool = False):
        """Correct the synthetic pair with ``settings``, check the outputs, record the numbers.

        Parameters
        ----------
        name : str
            The check's name (also its output folder).
        settings : spIsoNet.engine.EngineSettings
            The run's settings.
        pretrained : str, optional
            Model file to start from (with ``epochs=0``: prediction only).
        save : bool
            Keep the trained model's path for the prediction checks.
        """
        from spIsoNet.engine import correct_maps

        out = self.folder / name.replace(" ", "_").replace(",", "")
        self._peak_reset()
        start = time.perf_counter()
        result = correct_maps(self.half1, self.half2, 2.0, fsc3d_volume=self.fsc3d, limit_res=None,
                              settings=settings, output_dir=out, pretrained_model=pretrained,
                              loss_plot=None)  # fmt: skip
        seconds = time.perf_counter() - start
        peak = self._peak_gib()
        if len(result.corrected) != 2 or not all(np.isfinite(c).all() for c in result.corrected):
            raise RuntimeError("corrected maps missing or not finite")
        if settings.epochs and not all(math.isfinite(v) for v in result.loss_history):
            raise RuntimeError(f"loss not finite: {result.loss_history}")
        if save:
            self.model_path = str(result.model_path)
        steps = settings.epochs * (settings.n_subvolume // settings.batch_size)
        train_s = result.timings.get("train")
        predict_s = result.timings.get("predict")
        tiles = self._tiles_per_map(settings)
        self.record(
            name,
            samples_per_s=(steps * settings.batch_size / train_s) if steps and train_s else None,
            tiles_per_s=(2 * tiles / predict_s) if tiles and predict_s else None,
            peak_gib=peak,
            seconds=seconds,
            note=f"train {train_s or 0:.2f} s, predict {predict_s or 0:.2f} s; {result.device}",
        )

    def check_all(self) -> None:
        """Print the device and profile, then run every check in order (module docstring)."""
        torch = self.torch
        if self.cuda:
            name = torch.cuda.get_device_name(0)
            print(f"device: {name}, {torch.cuda.device_count()} GPU(s); torch {torch.__version__}, "
                  f"CUDA {torch.version.cuda}, NCCL {torch.cuda.nccl.version()}")  # fmt: skip
        else:
            print(f"device: CPU dry run (tiny network); torch {torch.__version__}")
        p = self.profile
        print(f"profile: box {p.box}, U-Net width {p.net_width}, depth {p.net_depth}, cubes "
              f"{p.cube_size}³, batch {p.batch_size}, {p.n_subvolume} cubes (1 epoch), tiles "
              f"{p.predict_crop_size}³")  # fmt: skip
        self.run("train fp32", lambda: self.correct("train fp32", self.settings(), save=True))
        bf16 = self.cuda and torch.cuda.is_bf16_supported()
        if bf16 or not self.cuda:
            self.run("train AMP bf16", lambda: self.correct(
                "train AMP bf16", self.settings(mixed_precision=True)))  # fmt: skip
        else:
            self.skip("train AMP bf16", "this GPU has no bfloat16")

        def fp16():
            with bf16_reported_unsupported():
                self.correct("train AMP fp16", self.settings(mixed_precision=True))

        self.run("train AMP fp16 (GradScaler)", fp16)
        accumulate = self.settings(mixed_precision=True, acc_batches=2)
        self.run(
            "train acc_batches=2 AMP", lambda: self.correct("train acc_batches=2 AMP", accumulate)
        )

        def predict(amp: bool):
            if self.model_path is None:
                raise RuntimeError("no model from 'train fp32' to predict with")
            label = f"predict {'AMP' if amp else 'fp32'}"
            self.correct(label, self.settings(epochs=0, mixed_precision=amp),
                         pretrained=self.model_path)  # fmt: skip

        self.run("predict fp32", lambda: predict(False))
        self.run("predict AMP", lambda: predict(True))
        if self.quick:
            self.skip("spawned DDP / torchrun", "--quick: multi-process checks left out")
            return
        if self.cuda and torch.cuda.device_count() >= 2:
            self.run("spawned DDP NCCL, 2 GPUs", lambda: self.correct(
                "spawned DDP NCCL, 2 GPUs", self.settings(gpu_ids=[0, 1])))  # fmt: skip
        elif self.cuda:
            self.skip("spawned DDP NCCL", "needs ≥ 2 GPUs (NCCL: one rank per GPU); the NCCL "
                      "process group is checked by the torchrun check below")  # fmt: skip
        else:
            self.run("spawned DDP gloo, 2 CPU procs", lambda: self.correct(
                "spawned DDP gloo, 2 CPU procs",
                self.settings(cpu_processes=2, batch_size=2 * p.batch_size)))  # fmt: skip
        self.run("torchrun --nproc_per_node 1", self.torchrun)

    def torchrun(self) -> None:
        """Run ``spisonet.py reconstruct`` under torchrun with one rank and check its outputs."""
        from spIsoNet.io import write_map

        folder = self.folder / "torchrun"
        folder.mkdir()
        h1 = write_map(folder / "h1.mrc", self.half1, 2.0)
        h2 = write_map(folder / "h2.mrc", self.half2, 2.0)
        p = self.profile
        out = folder / "out"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "1", str(REPO / "bin" / "spisonet.py"), "reconstruct",
               str(h1), str(h2), "--output_dir", str(out), "--epochs", "1",
               "--n_subvolume", str(p.n_subvolume), "--cube_size", str(p.cube_size),
               "--predict_crop_size", str(p.predict_crop_size),
               "--batch_size", str(p.batch_size), "--net_width", str(p.net_width),
               "--net_depth", str(p.net_depth), "--seed", "1",
               "--skip_metrics", "true"]  # fmt: skip
        cmd += ["--gpuID", "0"] if self.cuda else ["--device", "cpu", "--ncpus", "1"]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
            print("\n".join(tail), file=sys.stderr)
            raise RuntimeError(f"torchrun exited with {done.returncode} (stderr tail above)")
        written = sorted(path.name for path in out.glob("*.mrc"))
        if len(written) < 2:
            raise RuntimeError(f"torchrun run wrote no corrected half-maps in {out}: {written}")
        backend = "nccl" if self.cuda else "gloo"
        self.record("torchrun --nproc_per_node 1", seconds=seconds,
                    note=f"{backend}; wrote {', '.join(written)}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the checks on the chosen device and print (optionally write) the summary.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 when every check passed or was skipped, 1 otherwise.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        choices=("auto", "cuda", "cpu"),
        default="auto",
        help="cuda: the GPU check; cpu: tiny dry run of the script (default auto: cuda if present)",
    )
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument(
        "--quick", action="store_true", help="leave out the multi-process checks (spawn, torchrun)"
    )
    args = parser.parse_args(argv)
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu":
            print("no CUDA GPU here: running the CPU dry run (the GPU checks need a GPU)")
    if device == "cuda" and not torch.cuda.is_available():
        print("FAIL setup: --device cuda but torch sees no CUDA GPU", flush=True)
        return 1
    profile = GPU_PROFILE if device == "cuda" else CPU_PROFILE
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spisonet_gpu_check_") as tmp:
        checker = Checker(profile, Path(tmp), quick=args.quick)
        checker.check_all()
    total = time.perf_counter() - start
    summary = {"device": device, "seconds": round(total, 1), "results": checker.results}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if checker.failures:
        print(f"GPU check FAILED ({len(checker.failures)}): {', '.join(checker.failures)} "
              f"[{total:.0f} s]")  # fmt: skip
        return 1
    print(f"GPU check passed on {device} in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
