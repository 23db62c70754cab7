"""The RELION plugin inside a real ``relion_refine_mpi`` 3D auto-refine (the real client).

Particles are projected with ``relion_project`` from a small seeded phantom (Gaussian blobs,
box 32 at 4 Å, a preferred orientation), white noise is added with numpy, and
``relion_refine_mpi --auto_refine --split_random_halves --external_reconstruct`` runs with the
plugin as ``RELION_EXTERNAL_RECONSTRUCT_EXECUTABLE`` and the correction on at a tiny budget. A
small launcher script logs every call (argv, exit status) and keeps a copy of its inputs and
output. Checked: RELION converged and wrote its final files, every call exited 0, the correction
ran, RELION's final map is the plugin's output of the final call, and the plugin's plain map
equals ``relion_external_reconstruct``'s on the same kept inputs.

Needs RELION on PATH (``apt-get install relion`` gives 3.1.3; ``.ci/run`` installs it); skipped
with the reason when it is not installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from ._vectors import TINY

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = ("relion_refine_mpi", "relion_project", "relion_external_reconstruct", "mpirun")
MISSING = [name for name in PROGRAMS if shutil.which(name) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"RELION not installed ({', '.join(MISSING)} not on PATH; "
    "`apt-get install relion` gives RELION 3.1.3)",
)

BOX = 32  # px
APIX = 4.0  # Å
N_PARTICLES = 200
SNR = 0.5  # per-image variance ratio
SEED = 42
DIAMETER = 100.0  # Å, --particle_diameter
REFINE_TIMEOUT = 900.0  # s
#: correction on from the first iteration, at a tiny budget; strict: a fallback is exit 1
PLUGIN_ENV = {**TINY, "ISONET_STRICT": "1"}
#: the same call with the correction off (start condition never met)
PLAIN_ENV = {"ISONET_START_HEALPIX": "99", "ISONET_DEVICE": "cpu", "ISONET_STRICT": "1"}
RUN = "Refine3D/job001"
RELION_PROGRAM = ["relion_external_reconstruct"]


# ------------------------------------------------------------------------------------------
# simulation
def phantom(box: int, seed: int) -> np.ndarray:
    """Sum of 6 Gaussian blobs (sigma 1.2–2.5 px) within 8 px of the centre, (box,)*3 float32."""
    rng = np.random.default_rng(seed)
    grid = np.arange(box, dtype=np.float64) - box // 2
    z, y, x = np.meshgrid(grid, grid, grid, indexing="ij")
    volume = np.zeros((box,) * 3)
    for _ in range(6):
        direction = rng.normal(size=3)
        centre = direction / np.linalg.norm(direction) * rng.uniform(2.0, 8.0)
        sigma = rng.uniform(1.2, 2.5)
        r2 = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2
        volume += rng.uniform(0.5, 1.0) * np.exp(-r2 / (2.0 * sigma**2))
    return volume.astype(np.float32)


def lowpass(volume: np.ndarray, apix: float, resolution: float) -> np.ndarray:
    """Gaussian low-pass with amplitude 0.5 at ``resolution`` Å (float32, same shape)."""
    n = volume.shape[0]
    f = np.fft.fftfreq(n) / apix
    fz, fy, fx = np.meshgrid(f, f, np.fft.rfftfreq(n) / apix, indexing="ij")
    s2 = fz**2 + fy**2 + fx**2
    gauss = np.exp(-np.log(2.0) * s2 * resolution**2)
    return np.fft.irfftn(np.fft.rfftn(volume) * gauss, s=volume.shape, axes=(0, 1, 2)).astype(
        np.float32
    )


def write_mrc(path: Path, data: np.ndarray, apix: float) -> None:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        mrc.voxel_size = apix


OPTICS = (
    "\n# version 30001\n\ndata_optics\n\nloop_\n"
    "_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\n_rlnVoltage #3\n_rlnSphericalAberration #4\n"
    "_rlnAmplitudeContrast #5\n_rlnImagePixelSize #6\n_rlnImageSize #7\n"
    "_rlnImageDimensionality #8\n"
    f"optics1 1 300.0 2.7 0.1 {APIX:.4f} {BOX} 2\n\n"
)


def angles_star(n: int, seed: int) -> str:
    """Orientations: 70 % within 20° of the top view (tilt 0 or 180), the rest uniform."""
    rng = np.random.default_rng(seed)
    n_top = int(round(0.7 * n))
    tilt_top = np.degrees(np.arccos(rng.uniform(np.cos(np.radians(20.0)), 1.0, n_top)))
    tilt_top = np.where(rng.random(n_top) < 0.5, 180.0 - tilt_top, tilt_top)
    tilt = rng.permutation(np.r_[tilt_top, np.degrees(np.arccos(rng.uniform(-1, 1, n - n_top)))])
    rot, psi = rng.uniform(0.0, 360.0, (2, n))
    shifts = np.clip(rng.normal(0.0, 1.0, (2, n)), -3.0, 3.0)  # Å
    rows = [
        f"{r:.4f} {t:.4f} {p:.4f} {x:.4f} {y:.4f} 1"
        for r, t, p, x, y in zip(rot, tilt, psi, *shifts, strict=True)
    ]
    labels = [
        "rlnAngleRot",
        "rlnAngleTilt",
        "rlnAnglePsi",
        "rlnOriginXAngst",
        "rlnOriginYAngst",
        "rlnOpticsGroup",
    ]
    return _loop("particles", labels, rows)


def _loop(name: str, labels: list[str], rows: list[str]) -> str:
    head = [f"\n# version 30001\n\ndata_{name}\n\nloop_"]
    head += [f"_{label} #{i + 1}" for i, label in enumerate(labels)]
    return OPTICS + "\n".join(head + rows) + "\n\n"


def simulate(project: Path) -> None:
    """Simulate/: truth, reference (30 Å low-pass), noisy particles and their STAR (no poses)."""
    sim = project / "Simulate"
    sim.mkdir()
    truth = phantom(BOX, SEED)
    write_mrc(sim / "truth.mrc", truth, APIX)
    write_mrc(sim / "ref.mrc", lowpass(truth, APIX, 30.0), APIX)
    (sim / "angles.star").write_text(angles_star(N_PARTICLES, SEED))
    run_ok(
        ["relion_project", "--i", "Simulate/truth.mrc", "--ang", "Simulate/angles.star"]
        + ["--o", "Simulate/proj", "--angpix", str(APIX)],
        project,
    )
    with mrcfile.open(sim / "proj.mrcs") as mrc:
        clean = np.array(mrc.data, dtype=np.float64)
    assert clean.shape == (N_PARTICLES, BOX, BOX)
    sigma = np.sqrt(clean.var(axis=(1, 2)).mean() / SNR)
    noisy = (clean + np.random.default_rng(SEED + 1).normal(0.0, sigma, clean.shape)) / sigma
    write_mrc(sim / "particles.mrcs", noisy, APIX)
    rows = [f"{i + 1:06d}@Simulate/particles.mrcs 1 mic{i % 10}" for i in range(N_PARTICLES)]
    labels = ["rlnImageName", "rlnOpticsGroup", "rlnMicrographName"]
    (sim / "particles.star").write_text(_loop("particles", labels, rows))


# ------------------------------------------------------------------------------------------
# running
def run_ok(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 120.0) -> str:
    """Run a program to completion; fail the test with its output if it exits non-zero."""
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{shlex.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}"
            f"\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def launcher(path: Path, calls_log: Path, keep: Path) -> None:
    """The program RELION calls: log argv, keep the inputs, run the plugin, keep its output.

    Kept per call: the STAR files of the job folder at call time (the call's own and the
    previous iteration's metadata) and the three arrays, under ``keep/<root>/``; the map the
    plugin wrote, as ``keep/<root>.out.mrc``.
    """
    plugin = shlex.join([sys.executable, str(REPO / "bin" / "relion_wrapper.py")])
    path.write_text(
        "#!/usr/bin/env bash\n"
        f"log={shlex.quote(str(calls_log))}\nkeep={shlex.quote(str(keep))}\n"
        'echo "START rank=${OMPI_COMM_WORLD_RANK:-?} argc=$# argv=$*" >> "$log"\n'
        'root=${1%_external_reconstruct.star}\nname=$(basename "$root")\n'
        'mkdir -p "$keep/$name/$(dirname "$root")"\n'
        'cp "$(dirname "$root")"/*.star '
        '"$root"_external_reconstruct_{data_real,data_imag,weight}.mrc '
        '"$keep/$name/$(dirname "$root")/"\n'
        f'{plugin} "$@"\nrc=$?\n'
        'cp "$root"_external_reconstruct.mrc "$keep/$name.out.mrc" 2>/dev/null\n'
        'echo "END rc=$rc argv=$*" >> "$log"\n'
        "exit $rc\n"
    )
    path.chmod(0o755)


def refine(project: Path, plugin: Path) -> tuple[int, str, float]:
    """relion_refine_mpi auto-refine (3 ranks: leader + one per half); (rc, stdout+err, s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISONET_")}
    env.update(PLUGIN_ENV)
    env.update(
        RELION_EXTERNAL_RECONSTRUCT_EXECUTABLE=str(plugin),
        OMP_NUM_THREADS="1",
        OMPI_MCA_rmaps_base_oversubscribe="1",
    )
    mpi = ["mpirun", "--oversubscribe", "-np", "3"]
    if os.geteuid() == 0:
        mpi.append("--allow-run-as-root")
    for name in ["RELION_EXTERNAL_RECONSTRUCT_EXECUTABLE", "OMP_NUM_THREADS", *PLUGIN_ENV]:
        mpi += ["-x", name]
    args = mpi + [
        "relion_refine_mpi",
        *("--o", f"{RUN}/run", "--auto_refine", "--split_random_halves"),
        *("--i", "Simulate/particles.star", "--ref", "Simulate/ref.mrc", "--ini_high", "30"),
        *("--dont_combine_weights_via_disc", "--pool", "30", "--pad", "2"),
        *("--particle_diameter", f"{DIAMETER:g}", "--flatten_solvent", "--zero_mask"),
        *("--oversampling", "1", "--healpix_order", "1", "--auto_local_healpix_order", "2"),
        *("--offset_range", "2", "--offset_step", "1", "--sym", "C1"),
        *("--low_resol_join_halves", "40", "--j", "1", "--external_reconstruct"),
        *("--dont_check_norm", "--auto_ignore_angles", "--auto_resol_angles"),
        *("--random_seed", str(SEED)),
    ]
    (project / RUN).mkdir(parents=True)
    start = time.perf_counter()
    proc = subprocess.Popen(
        args,
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=REFINE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"relion_refine_mpi did not finish in {REFINE_TIMEOUT:g} s:\n{out[-3000:]}")
    return proc.returncode, out, time.perf_counter() - start


def read_map(path: Path) -> np.ndarray:
    with mrcfile.open(path) as mrc:
        return np.array(mrc.data, dtype=np.float32)


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).max() / np.abs(b).max())


def rerun(
    keep: Path, name: str, dest: Path, program: list[str], env: dict
) -> tuple[np.ndarray, str]:
    """Run ``program <star>`` on a fresh copy of a kept call in ``dest``: (its map, stdout)."""
    shutil.copytree(keep / name, dest)
    star = f"{RUN}/{name}_external_reconstruct.star"
    out = run_ok([*program, star], dest, env=env)
    return read_map(dest / f"{RUN}/{name}_external_reconstruct.mrc"), out


# ------------------------------------------------------------------------------------------
def test_refine_with_plugin_converges_and_matches_relion(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    simulate(project)
    calls_log, keep = tmp_path / "calls.log", tmp_path / "keep"
    keep.mkdir()
    plugin = tmp_path / "plugin.sh"
    launcher(plugin, calls_log, keep)

    rc, out, seconds = refine(project, plugin)
    print(f"relion_refine_mpi: rc {rc} in {seconds:.0f} s")
    run = project / RUN
    plugin_log = run / "spisonet_relion.log"
    detail = f"{out[-3000:]}\n---- calls\n{calls_log.read_text() if calls_log.exists() else ''}"
    assert rc == 0, f"relion_refine_mpi exited {rc}:\n{detail}"

    # RELION converged and wrote its final files
    assert "converged" in out.lower(), detail
    for name in ("run_class001.mrc", "run_data.star", "run_model.star"):
        assert (run / name).is_file(), f"{name} missing:\n{detail}"
    for name in ("run_half1_class001_unfil.mrc", "run_half2_class001_unfil.mrc"):
        assert (run / name).is_file(), f"{name} missing"
    # no rendezvous markers left behind, and RELION-like permissions (umask, not 0600)
    assert not sorted(p.name for p in run.glob("*.spisonet_*")), "markers left in the job folder"
    written = [plugin_log, *run.glob("*_external_reconstruct.mrc"), *run.glob("spisonet/*.pt")]
    unreadable = [p.name for p in written if p.is_file() and not p.stat().st_mode & 0o044]
    assert len(written) > 1 and not unreadable, unreadable

    # every plugin call exited 0, with RELION's one argument
    lines = calls_log.read_text().splitlines()
    starts = [line for line in lines if line.startswith("START")]
    ends = [line for line in lines if line.startswith("END")]
    assert len(starts) == len(ends) >= 5, lines
    assert all(" argc=1 " in line for line in starts), starts
    assert all(line.startswith("END rc=0 ") for line in ends), ends
    names = [Path(line.split("argv=")[1]).name.split("_external")[0] for line in ends]
    halves = sorted(name for name in names if "_half" in name)  # it001 half1 first
    final = names[-1]
    assert "_half" not in final and final.endswith("_class001"), names
    assert names.count(final) == 1 and len(halves) == len(names) - 1, names

    # the correction ran (and every corrected call succeeded: ISONET_STRICT)
    log_text = plugin_log.read_text()
    n_corrected = log_text.count("corrected (joint, both halves")
    print(f"{len(names)} plugin calls, {n_corrected} iteration(s) corrected, final call {final}")
    assert "corrected (joint, both halves, cpu" in log_text, log_text[-3000:]
    assert "FALLBACK" not in log_text and "ERROR" not in log_text, log_text[-3000:]

    # RELION's final map is the plugin's output of the final call
    final_map = read_map(run / "run_class001.mrc")
    plugin_final = read_map(keep / f"{final}.out.mrc")
    assert final_map.shape == (BOX,) * 3
    np.testing.assert_array_equal(final_map, plugin_final)

    # the plugin's plain map = relion_external_reconstruct's on the same inputs
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISONET_")}
    env.update(PLAIN_ENV, OMP_NUM_THREADS="1")
    plugin_cmd = [sys.executable, str(REPO / "bin" / "relion_wrapper.py")]
    plain = {}
    for name in (halves[0], final):
        relion, _ = rerun(keep, name, tmp_path / "relion" / name, RELION_PROGRAM, env)
        plain[name], out = rerun(keep, name, tmp_path / "ours" / name, plugin_cmd, env)
        if name != final:
            assert "correction skipped: healpix" in out, out
        diff = rel_diff(plain[name], relion)
        print(f"{name}: plugin plain vs relion_external_reconstruct: {diff:.2e}")
        assert diff < 1e-6, (name, diff)
    # the final call is plain in the refinement too; the first half call was corrected
    np.testing.assert_array_equal(plugin_final, plain[final])
    assert rel_diff(read_map(keep / f"{halves[0]}.out.mrc"), plain[halves[0]]) > 1e-3
