"""Plain path of the RELION plugin against ``relion_external_reconstruct``, interleaved A/B.

Usage: ``python benchmarks/bench_plugin_plain.py [--repeat R] [--vectors DIR] [--cases ...]``

Cases (each a complete external-reconstruct call in a temporary job folder, with the previous
iteration's STAR files where the vectors have them, so the plugin reads its metadata and decides
"correction skipped: healpix 2 < 3" as in a real refinement):

* ``it001``, ``it004``, ``it005``: captured RELION 5.0.1 calls at box 64 (current size 28, 34
  and 64: internal grids 59, 71 and 131);
* ``box128``: the final call ``it005`` stretched to box 128 at full current size (internal grid
  259): every Fourier array and tau2 value at frequency k is taken from frequency k // 2 of the
  box-64 call (tau2 scaled by 1/8), so the arrays have RELION's layout and realistic values.

Each repeat runs both programs in alternating order (A B, then B A, ...), each as a fresh
process with ``OMP_NUM_THREADS=1`` (what relion_refine passes to its ranks), and the script
prints the median wall and CPU (user + system) time of each, their ratios (plugin / RELION) and
the largest relative difference of the two maps; CPU time is the steadier of the two on a loaded
machine. The machine load (``os.getloadavg``) is printed before and after:
on a shared machine only interleaved medians are comparable.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mrcfile
import numpy as np

REPO = Path(__file__).resolve().parents[1]
VECTOR_DIRS = [
    REPO.parent / "shared" / "relion-vectors",
    REPO / "tests" / "data" / "relion-vectors",
]
CASES = {
    "it001": "run_it001_half1_class001",
    "it004": "run_it004_half1_class001",
    "it005": "run_it005_class001",
    "box128": "run_it005_class001",
}
JOB = "Refine3D/job001"


def _unzip(source: Path, target: Path) -> None:
    with gzip.open(source) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)


def install_call(calls: Path, call: str, project: Path) -> str:
    """Copy one captured call (and its ``run_state`` STAR files) into ``project``."""
    folder = project / JOB
    folder.mkdir(parents=True, exist_ok=True)
    source = calls / call
    shutil.copy(source / f"{call}_external_reconstruct.star", folder)
    for part in ("data_real", "data_imag", "weight"):
        name = f"{call}_external_reconstruct_{part}.mrc"
        _unzip(source / f"{name}.gz", folder / name)
    state = source / "run_state"
    if state.is_dir():
        for star in state.glob("*.star"):
            shutil.copy(star, folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return f"{JOB}/{call}_external_reconstruct.star"


def stretch_to_box128(project: Path, star: str) -> str:
    """Write a box-128 call made from a box-64 full-size call (see the module docstring).

    Returns
    -------
    str
        The new call's STAR file, relative to ``project``.
    """
    root = star[: -len("_external_reconstruct.star")]
    new_root = f"{JOB}/big_class001"
    g, big = 128, 256  # padded grids (pad 2)
    kz = np.fft.fftfreq(big, 1.0 / big).astype(np.int64)
    kx = np.arange(big // 2 + 1)
    half = np.where(kz >= 0, kz // 2, -((-kz) // 2)) % g
    inside = kz[:, None, None] ** 2 + kz[None, :, None] ** 2 + kx[None, None, :] ** 2 < 128**2
    for part in ("data_real", "data_imag", "weight"):
        with mrcfile.open(project / f"{root}_external_reconstruct_{part}.mrc") as mrc:
            small = np.asarray(mrc.data)
        stretched = small[np.ix_(half, half, np.minimum(kx // 2, g // 2))] * inside
        with mrcfile.new(
            project / f"{new_root}_external_reconstruct_{part}.mrc", overwrite=True
        ) as mrc:
            mrc.set_data(stretched.astype(np.float32))
    text = (project / star).read_text()
    head, _, table = text.partition("data_external_reconstruct_tau2")
    head = head.replace(Path(root).name, "big_class001")
    head = re.sub(r"(_rlnOriginalImageSize\s+)64\b", r"\g<1>128", head)
    head = re.sub(r"(_rlnCurrentImageSize\s+)64\b", r"\g<1>128", head)
    rows = {}
    for line in table.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit():
            rows[int(parts[0])] = (float(parts[1]), float(parts[2]))
    lines = [head + "data_external_reconstruct_tau2", "", "loop_ "]
    lines += ["_rlnSpectralIndex #1 ", "_rlnReferenceTau2 #2 ", "_rlnGoldStandardFsc #3 "]
    for shell in range(65):
        tau2, fsc = rows[shell // 2]
        lines.append(f"{shell:12d} {tau2 / 8:.6e} {fsc:12.6f} ")
    (project / f"{new_root}_external_reconstruct.star").write_text("\n".join(lines) + "\n \n")
    return f"{new_root}_external_reconstruct.star"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-500:]}")
    return seconds, _children_cpu() - cpu


def read(path: Path) -> np.ndarray:
    """Read the map of an MRC file as float64."""
    with mrcfile.open(path) as mrc:
        return np.array(mrc.data, dtype=np.float64)


def main() -> None:
    """Run every case ``--repeat`` times in A/B order and print the medians and the map diff."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--vectors", type=Path, default=None)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    relion = shutil.which("relion_external_reconstruct")
    if relion is None:
        raise SystemExit("relion_external_reconstruct not on PATH (apt-get install relion)")
    vectors = args.vectors or next((d for d in VECTOR_DIRS if (d / "calls").is_dir()), None)
    if vectors is None:
        raise SystemExit("no relion-vectors folder found (use --vectors)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISONET_")}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    plugin = [sys.executable, str(REPO / "bin" / "relion_wrapper.py")]
    print(f"# {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, vectors {vectors}")
    print(
        f"case    box  relion[s]  plugin[s]  ratio  cpu: relion[s] plugin[s] ratio  "
        f"max|diff|/max  (medians of {args.repeat})"
    )
    for case in args.cases:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            star = install_call(vectors / "calls", CASES[case], project)
            if case == "box128":
                star = stretch_to_box128(project, star)
            result = project / star.replace(".star", ".mrc")
            times: dict[str, list[float]] = {"relion": [], "plugin": []}
            cpus: dict[str, list[float]] = {"relion": [], "plugin": []}
            maps = {}
            for rep in range(args.repeat):
                order = ["relion", "plugin"] if rep % 2 == 0 else ["plugin", "relion"]
                for which in order:
                    command = [relion, star] if which == "relion" else [*plugin, star]
                    wall, cpu = timed(command, project, env)
                    times[which].append(wall)
                    cpus[which].append(cpu)
                    if rep == 0:
                        maps[which] = read(result)
            diff = np.abs(maps["plugin"] - maps["relion"]).max() / np.abs(maps["relion"]).max()
            a, b = statistics.median(times["relion"]), statistics.median(times["plugin"])
            ca, cb = statistics.median(cpus["relion"]), statistics.median(cpus["plugin"])
            box = 128 if case == "box128" else 64
            print(
                f"{case:7s} {box:4d} {a:10.2f} {b:10.2f} {b / a:6.2f}  {ca:14.2f} {cb:9.2f} "
                f"{cb / ca:5.2f}  {diff:.1e}",
                flush=True,
            )
    print(f"# load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
