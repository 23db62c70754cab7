"""RELION plugin: reconstruction against RELION's own output, and the wrapper end to end.

Job folders are built in temporary directories from ``../shared/relion-vectors`` (real files of a
RELION 5.0.1 run) plus generated optimiser/sampling/model/data STAR files in the 3.1, 4.0 and 5.0
formats. The correction runs use a tiny network (CPU) and forced start conditions.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile

from spIsoNet.relion import wrapper
from spIsoNet.relion.reconstruction import reconstruct

from ._vectors import TINY, VECTORS, call_arrays

REPO = Path(__file__).resolve().parents[2]
CALLS = [
    "run_it001_half1_class001",
    "run_it001_half2_class001",
    "run_it004_half1_class001",
    "run_it004_half2_class001",
    "run_it005_class001",
]
ORIGINAL_ROOT = "Refine3D/job001/run"
COMMAND = (
    "--o {o} --auto_refine --split_random_halves --i refine_input_1k.star --ref ref_lp40.mrc "
    "--ini_high 30 --pad 2 --particle_diameter 100 --flatten_solvent --zero_mask "
    "--healpix_order 1 --auto_local_healpix_order 4 --sym C1 --low_resol_join_halves 40 "
    "--norm --scale --j 1 --external_reconstruct {extra}"
)

pytestmark = pytest.mark.skipif(not VECTORS.is_dir(), reason=f"{VECTORS} not present")


# ------------------------------------------------------------------------------------------
# building job folders
def _header(version: str) -> str:
    return "# version 50001" if version == "5.0" else "# version 30001"


def _kv_block(name: str, items: dict, version: str) -> str:
    lines = ["", _header(version), "", f"data_{name}", ""]
    lines += [f"_{k:<40s} {v}" for k, v in items.items()]
    return "\n".join(lines) + "\n \n"


def _loop_block(name: str, labels: list[str], rows: list[list], version: str) -> str:
    lines = ["", _header(version), "", f"data_{name}", "", "loop_ "]
    lines += [f"_{label} #{i + 1} " for i, label in enumerate(labels)]
    lines += ["  ".join(str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n \n"


def write_metadata(
    folder: Path,
    output_root: str,
    iteration: int,
    *,
    version: str = "5.0",
    healpix: int = 3,
    extra_args: str = "",
    mask: str = "None",
    first_optimiser: bool = True,
) -> None:
    """Optimiser/sampling/model/data STAR files of iteration ``iteration`` (and it000)."""
    prefix = f"{output_root}_it{iteration:03d}"
    command = COMMAND.format(o=output_root, extra=extra_args)
    general = {
        "rlnOutputRootName": output_root,
        "rlnModelStarFile": f"{prefix}_half1_model.star",
        "rlnExperimentalDataStarFile": f"{prefix}_data.star",
        "rlnOrientSamplingStarFile": f"{prefix}_sampling.star",
        "rlnCurrentIteration": iteration,
        "rlnDoSplitRandomHalves": 1,
        "rlnParticleDiameter": "100.000000",
        "rlnSolventMaskName": mask,
        "rlnSolventMask2Name": "None",
        "rlnDoAutoRefine": 1,
        "rlnHasConverged": 0,
    }
    if version != "3.1":
        general["rlnTau2FudgeScheme"] = "None"
    if version == "5.0":
        general["rlnDoBlush"] = 0
    text = f"# RELION optimiser; version {version}.0\n# {command} \n"
    for it in {iteration, 0} if first_optimiser else {iteration}:
        optimiser = folder / Path(f"{output_root}_it{it:03d}_optimiser.star").name
        optimiser.write_text(text + _kv_block("optimiser_general", general, version))
    sampling = {
        "rlnIs3DSampling": 1,
        "rlnHealpixOrder": healpix,
        "rlnSymmetryGroup": "C1",
        "rlnPsiStep": "7.500000",
        "rlnHealpixOrderOriginal": 1,
    }
    (folder / Path(f"{prefix}_sampling.star").name).write_text(
        _kv_block("sampling_general", sampling, version)
        + _loop_block("sampling_directions", ["rlnAngleRot", "rlnAngleTilt"], [[0, 0]], version)
    )
    model_general = {
        "rlnReferenceDimensionality": 3,
        "rlnDataDimensionality": 2,
        "rlnOriginalImageSize": 64,
        "rlnCurrentResolution": "15.000000",
        "rlnPaddingFactor": "2.000000",
        "rlnPixelSize": "2.000000",
        "rlnNrClasses": 1,
    }
    if version != "3.1":
        model_general["rlnNrOpticsGroups"] = 1
    shells = [[i, f"{i / 128:.6f}", 0.5, 0.1] for i in range(33)]
    for half in (1, 2):
        (folder / Path(f"{prefix}_half{half}_model.star").name).write_text(
            _kv_block("model_general", model_general, version)
            + _loop_block(
                "model_class_1",
                ["rlnSpectralIndex", "rlnResolution", "rlnGoldStandardFsc", "rlnReferenceTau2"],
                shells,
                version,
            )
        )
    optics = ["rlnOpticsGroupName", "rlnOpticsGroup", "rlnImagePixelSize", "rlnImageSize"]
    (folder / Path(f"{prefix}_data.star").name).write_text(
        _loop_block("optics", optics, [["optics1", 1, "2.000000", 64]], version)
        + _loop_block("particles", ["rlnImageName", "rlnOpticsGroup"], [["1@a.mrcs", 1]], version)
    )


def install_call(
    project: Path,
    call: str,
    *,
    output_root: str = ORIGINAL_ROOT,
    iteration: int | None = None,
    version: str = "5.0",
) -> str:
    """Copy one captured call into ``project`` (renamed to ``output_root``/``iteration``).

    Returns the STAR path relative to ``project`` (what RELION passes).
    """
    source = VECTORS / "calls" / call
    new = call
    if iteration is not None:
        old_it = call.split("_it")[1][:3]
        new = call.replace(f"_it{old_it}", f"_it{iteration:03d}")
    base_old = ORIGINAL_ROOT.rsplit("/", 1)[1]
    new_base = output_root.rsplit("/", 1)[1]
    new = new_base + new[len(base_old) :]
    folder = project / Path(output_root).parent
    folder.mkdir(parents=True, exist_ok=True)
    old_root = f"Refine3D/job001/{call}"
    new_root = f"{Path(output_root).parent}/{new}"
    text = (source / f"{call}_external_reconstruct.star").read_text()
    text = text.replace(old_root, new_root)
    if version != "5.0":
        text = text.replace("# version 50001", "# version 30001")
    if version == "3.1":  # 3.1 has no pixel size / particle diameter in the general block
        text = "\n".join(
            line
            for line in text.splitlines()
            if not line.startswith(("_rlnPixelSize", "_rlnParticleDiameter"))
        )
    star = f"{new_root}_external_reconstruct.star"
    (project / star).write_text(text)
    for part in ("data_real", "data_imag", "weight"):
        with gzip.open(source / f"{call}_external_reconstruct_{part}.mrc.gz") as src:
            (project / f"{new_root}_external_reconstruct_{part}.mrc").write_bytes(src.read())
    return star


def relion_result(call: str) -> np.ndarray:
    with mrcfile.open(VECTORS / "calls" / call / f"{call}_external_reconstruct.mrc.gz") as mrc:
        return np.array(mrc.data)


def read_result(path: Path) -> np.ndarray:
    with mrcfile.open(path) as mrc:
        assert mrc.data.dtype == np.float32
        return np.array(mrc.data)


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).max() / np.abs(b).max())


def run_main(project: Path, star: str, monkeypatch, env: dict | None = None) -> int:
    monkeypatch.chdir(project)
    for name in list(os.environ):
        if name.startswith("ISONET_"):
            monkeypatch.delenv(name)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return wrapper.main([star])


def spawn(project: Path, star: str, env: dict) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ISONET_")}
    full.update(env)
    full["PYTHONPATH"] = str(REPO) + os.pathsep + full.get("PYTHONPATH", "")
    full["OMP_NUM_THREADS"] = "1"
    return subprocess.Popen(
        [sys.executable, str(REPO / "bin" / "relion_wrapper.py"), star],
        cwd=project,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def log_text(project: Path, output_root: str = ORIGINAL_ROOT) -> str:
    return (project / Path(output_root).parent / wrapper.LOG_NAME).read_text()


# ------------------------------------------------------------------------------------------
# 1. the reconstruction itself
@pytest.mark.parametrize("call", CALLS)
def test_reconstruction_matches_relion(call):
    """Our reproduction of relion_external_reconstruct vs RELION 5.0.1's output (≤ 1e-4)."""
    ext, arrays = call_arrays(call)
    ours = reconstruct(
        *arrays,
        ori_size=ext.ori_size,
        current_size=ext.current_size,
        padding_factor=ext.padding,
        tau2=ext.tau2,
        tau2_fudge=ext.tau2_fudge,
    )
    assert ours.shape == (64, 64, 64) and ours.dtype == np.float32
    assert rel_diff(ours, relion_result(call)) < 1e-6


def test_reconstruction_terms_matter():
    """Dropping the MAP term or the gridding changes the result far beyond the tolerance."""
    call = "run_it004_half1_class001"
    ext, arrays = call_arrays(call)
    kw = dict(ori_size=64, current_size=ext.current_size, padding_factor=2.0)
    ref = relion_result(call)
    assert rel_diff(reconstruct(*arrays, tau2=None, **kw), ref) > 1e-2
    assert rel_diff(reconstruct(*arrays, tau2=ext.tau2, gridding_iterations=0, **kw), ref) > 1e-3


# ------------------------------------------------------------------------------------------
# 2. the wrapper: plain results
@pytest.mark.parametrize("version", ["3.1", "4.0", "5.0"])
def test_wrapper_plain_matches_relion(tmp_path, monkeypatch, version):
    star = install_call(tmp_path, "run_it004_half2_class001", version=version)
    write_metadata(tmp_path / "Refine3D/job001", ORIGINAL_ROOT, 3, version=version, healpix=2)
    assert run_main(tmp_path, star, monkeypatch) == 0
    out = tmp_path / "Refine3D/job001/run_it004_half2_class001_external_reconstruct.mrc"
    assert rel_diff(read_result(out), relion_result("run_it004_half2_class001")) < 1e-6
    log = log_text(tmp_path)
    assert "skipped: healpix 2 < 3" in log and "timings:" in log
    assert list((tmp_path / "Refine3D/job001").glob("*.tmp")) == []


def test_wrapper_final_and_class_calls_are_plain(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "Refine3D/job001"
    star = install_call(tmp_path, "run_it005_class001")
    write_metadata(folder, ORIGINAL_ROOT, 4)
    env = dict(TINY)  # start conditions hold, but a joined call is never corrected
    assert run_main(tmp_path, star, monkeypatch, env) == 0
    out = folder / "run_it005_class001_external_reconstruct.mrc"
    assert rel_diff(read_result(out), relion_result("run_it005_class001")) < 1e-6
    assert "spisonet.py reconstruct" in log_text(tmp_path)
    assert "spisonet.py reconstruct" in capsys.readouterr().out
    # a classification-like call (no half models of the previous iteration)
    for model in folder.glob("*_model.star"):
        model.unlink()
    out.unlink()
    assert run_main(tmp_path, star, monkeypatch, env) == 0
    assert rel_diff(read_result(out), relion_result("run_it005_class001")) < 1e-6
    assert "classification" in log_text(tmp_path)


def test_relion_reconstruct_side_door(tmp_path, monkeypatch):
    """Arbitrary root, no tau2 block, 4.0/5.0's shifted values: plain map without MAP term."""
    call = "run_it004_half1_class001"
    star = install_call(tmp_path, call)
    folder = tmp_path / "Refine3D/job001"
    new_star = folder / "my_recon_external_reconstruct.star"
    text = (tmp_path / star).read_text().split("data_external_reconstruct_tau2")[0]
    text = text.replace(f"{call}_external_reconstruct.mrc", "my_recon_external_reconstruct.mrc")
    text = text.replace("_rlnPixelSize                              2.000000", "_rlnPixelSize 0")
    new_star.write_text(text.rsplit("#", 1)[0])
    (tmp_path / star).unlink()
    assert (
        run_main(tmp_path, "Refine3D/job001/my_recon_external_reconstruct.star", monkeypatch) == 0
    )
    ours = read_result(folder / "my_recon_external_reconstruct.mrc")
    ext, arrays = call_arrays(call, folder)
    expected = reconstruct(*arrays, ori_size=64, current_size=ext.current_size, padding_factor=2)
    assert rel_diff(ours, expected) < 1e-6
    assert rel_diff(ours, relion_result(call)) > 1e-2  # really without the MAP term


def test_underscore_root_and_iteration_100(tmp_path, monkeypatch):
    root = "Refine3D/job_07/my_run_v2_it3"
    star = install_call(tmp_path, "run_it004_half1_class001", output_root=root, iteration=123)
    folder = tmp_path / "Refine3D/job_07"
    write_metadata(folder, root, 122, healpix=2)
    assert star.endswith("my_run_v2_it3_it123_half1_class001_external_reconstruct.star")
    assert run_main(tmp_path, star, monkeypatch) == 0
    out = folder / "my_run_v2_it3_it123_half1_class001_external_reconstruct.mrc"
    assert rel_diff(read_result(out), relion_result("run_it004_half1_class001")) < 1e-6
    log = log_text(tmp_path, root)
    assert "it123 half1 class001" in log and "skipped: healpix 2 < 3" in log


# ------------------------------------------------------------------------------------------
# 3. errors and fallbacks
def test_corrupt_or_missing_array_is_a_clear_error(tmp_path, monkeypatch, capsys):
    star = install_call(tmp_path, "run_it001_half1_class001")
    folder = tmp_path / "Refine3D/job001"
    real = folder / "run_it001_half1_class001_external_reconstruct_data_real.mrc"
    real.write_bytes(real.read_bytes()[:5000])  # truncated
    assert run_main(tmp_path, star, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(real.relative_to(tmp_path)) in err
    assert not (folder / "run_it001_half1_class001_external_reconstruct.mrc").exists()
    weight = folder / "run_it001_half1_class001_external_reconstruct_weight.mrc"
    weight.unlink()
    real.unlink()
    install_call(tmp_path, "run_it001_half1_class001")
    weight.unlink()
    assert run_main(tmp_path, star, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "weight" in err and "not found" in err


def test_wrong_array_size_is_a_clear_error(tmp_path, monkeypatch, capsys):
    star = install_call(tmp_path, "run_it001_half1_class001")
    path = tmp_path / "Refine3D/job001/run_it001_half1_class001_external_reconstruct_weight.mrc"
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.zeros((64, 64, 33), np.float32))
    assert run_main(tmp_path, star, monkeypatch) == 2
    assert "expected (128, 128, 65)" in capsys.readouterr().err


def test_missing_metadata_falls_back_with_reason(tmp_path, monkeypatch, capsys):
    star = install_call(tmp_path, "run_it004_half1_class001")
    folder = tmp_path / "Refine3D/job001"
    write_metadata(folder, ORIGINAL_ROOT, 3)
    (folder / "run_it003_sampling.star").unlink()
    assert run_main(tmp_path, star, monkeypatch, TINY) == 0
    out = folder / "run_it004_half1_class001_external_reconstruct.mrc"
    assert rel_diff(read_result(out), relion_result("run_it004_half1_class001")) < 1e-6
    log = log_text(tmp_path)
    assert "FALLBACK" in log and "run_it003_sampling.star" in log and "not found" in log
    assert "fallback" in capsys.readouterr().out
    # ISONET_STRICT turns the fallback into an error
    assert run_main(tmp_path, star, monkeypatch, {**TINY, "ISONET_STRICT": "True"}) != 0


def test_invalid_settings(tmp_path, monkeypatch, capsys):
    star1 = install_call(tmp_path, "run_it001_half1_class001")
    write_metadata(tmp_path / "Refine3D/job001", ORIGINAL_ROOT, 0)
    assert run_main(tmp_path, star1, monkeypatch, {"ISONET_EPOCHS": "five"}) == 2
    assert "ISONET_EPOCHS='five'" in capsys.readouterr().err
    # later iterations (a continued run) keep going with the plain map and say why
    star4 = install_call(tmp_path, "run_it004_half1_class001")
    write_metadata(tmp_path / "Refine3D/job001", ORIGINAL_ROOT, 3)
    assert run_main(tmp_path, star4, monkeypatch, {"ISONET_BETA": "-1"}) == 0
    out = tmp_path / "Refine3D/job001/run_it004_half1_class001_external_reconstruct.mrc"
    assert rel_diff(read_result(out), relion_result("run_it004_half1_class001")) < 1e-6
    assert "ISONET_BETA='-1'" in log_text(tmp_path)


def test_interrupted_write_leaves_no_partial_result(tmp_path, monkeypatch, capsys):
    import spIsoNet.io.mrc as mrc_module

    star = install_call(tmp_path, "run_it001_half1_class001")
    folder = tmp_path / "Refine3D/job001"
    out = folder / "run_it001_half1_class001_external_reconstruct.mrc"
    out.write_bytes(b"previous content")
    real_new = mrcfile.new

    def failing_new(path, *args, **kwargs):
        handle = real_new(path, *args, **kwargs)
        handle.set_data(np.zeros((4, 4, 4), np.float32))
        handle.flush()
        raise OSError("No space left on device")

    monkeypatch.setattr(mrc_module.mrcfile, "new", failing_new)
    assert run_main(tmp_path, star, monkeypatch) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == b"previous content"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


# ------------------------------------------------------------------------------------------
# 4. two halves with the correction on
def _pair_job(
    tmp_path, root, iteration, extra_args="", prev_maps=False, version="5.0", mask="None"
):
    stars = [
        install_call(
            tmp_path,
            f"run_it004_half{h}_class001",
            output_root=root,
            iteration=iteration,
            version=version,
        )
        for h in (1, 2)
    ]
    folder = tmp_path / Path(root).parent
    write_metadata(folder, root, iteration - 1, extra_args=extra_args, version=version, mask=mask)
    if prev_maps:  # the previous iteration's half-maps (RELION's it004 results stand in)
        for h in (1, 2):
            data = relion_result(f"run_it004_half{h}_class001")
            name = f"{Path(root).name}_it{iteration - 1:03d}_half{h}_class001.mrc"
            with mrcfile.new(folder / name) as mrc:
                mrc.set_data(data)
                mrc.voxel_size = 2.0
    return stars, folder


def test_concurrent_halves_correct_jointly(tmp_path):
    root = "Refine3D/job002/my_run"
    mask = tmp_path / "MaskCreate/job009/mask.mrc"
    mask.parent.mkdir(parents=True)
    c = np.arange(64) - 32
    r = np.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)
    with mrcfile.new(mask) as mrc:
        mrc.set_data(np.clip((26 - r) / 4, 0, 1).astype(np.float32))
        mrc.voxel_size = 2.0
    stars, folder = _pair_job(tmp_path, root, 104, version="4.0", mask="MaskCreate/job009/mask.mrc")
    env = {**TINY, "ISONET_FSC_FEEDBACK": "True", "ISONET_WHITENING_LOW": "20"}
    env["ISONET_PARTNER_WAIT"] = "180"  # a loaded CI machine may start one half late
    procs = [spawn(tmp_path, star, env) for star in stars]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    log = log_text(tmp_path, root)
    assert "mode worker" in log and "mode waiter" in log, log
    assert "FALLBACK" not in log
    assert "before:" in log and "after (" in log and "training+prediction" in log
    assert "plan: 2 map(s), 1 epoch(s) x 4 cubes of 16³" in log and "warm start off" in log
    assert "resolution: RELION's current 15.00 Å" in log and "metrics up to the current" in log
    for h, (stdout, _) in zip((1, 2), outs):
        assert "corrected" in stdout
        result = read_result(folder / f"my_run_it104_half{h}_class001_external_reconstruct.mrc")
        plain = relion_result(f"run_it004_half{h}_class001")
        assert result.shape == (64, 64, 64) and np.isfinite(result).all()
        assert rel_diff(result, plain) > 1e-3  # really replaced
        corr = np.corrcoef(result.ravel(), plain.ravel())[0, 1]
        assert corr > 0.5  # still the same structure
        feedback = folder / f"my_run_it104_half{h}_class001_external_reconstruct_out.star"
        assert feedback.read_text().lstrip().startswith("# version 30001")
        table = starfile.read(feedback, always_dict=True)["external_reconstruct_out"]
        assert list(table.columns) == ["rlnSpectralIndex", "rlnFourierShellCorrelation"]
        assert len(table) == 33 and table["rlnFourierShellCorrelation"].iloc[1] > 0.9
    assert "whitened 20–" in log and "mask: MaskCreate/job009/mask.mrc" in log
    assert not list(folder.glob("*_spisonet.mrc"))
    assert not list(folder.glob("*.spisonet_half*.arrived"))


def test_sequential_halves_do_not_deadlock(tmp_path):
    """Half2 starts only after half1 returned (as with --sequential_halves_recons)."""
    root = "Refine3D/job003/run"
    stars, folder = _pair_job(tmp_path, root, 5, prev_maps=True)
    for h in (1, 2):  # initial references for keep-lowres (below --ini_high 30 Å)
        with mrcfile.new(folder / f"run_it000_half{h}_class001.mrc") as mrc:
            mrc.set_data(relion_result(f"run_it001_half{h}_class001"))
            mrc.voxel_size = 2.0
    env = {**TINY, "ISONET_PARTNER_WAIT": "2", "ISONET_KEEP_LOWRES": "True"}
    start = time.monotonic()
    for star in stars:
        proc = spawn(tmp_path, star, env)
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr
        assert "corrected (this half alone" in stdout, (stdout, stderr)
    assert time.monotonic() - start < 200
    log = log_text(tmp_path, root)
    assert "did not start within" in log and "mode solo" in log
    assert "initial reference kept below 30 Å" in log


def test_sequential_flag_skips_the_rendezvous(tmp_path, monkeypatch):
    root = "Refine3D/job004/run"
    stars, folder = _pair_job(tmp_path, root, 5, extra_args="--sequential_halves_recons")
    # no previous half-maps: the solo correction falls back, but without waiting for a partner
    start = time.monotonic()
    assert run_main(tmp_path, stars[0], monkeypatch, {**TINY, "ISONET_PARTNER_WAIT": "600"}) == 0
    assert time.monotonic() - start < 60
    log = log_text(tmp_path, root)
    assert "--sequential_halves_recons" in log and "previous half-maps" in log
    assert not list(folder.glob("*.spisonet_*"))


def test_partner_killed_survivor_falls_back(tmp_path):
    root = "Refine3D/job005/run"
    stars, folder = _pair_job(tmp_path, root, 6)
    env = {**TINY, "ISONET_EPOCHS": "200", "ISONET_HEARTBEAT_TIMEOUT": "3"}
    procs = {h: spawn(tmp_path, star, env) for h, star in zip((1, 2), stars)}
    claim = folder / "run_it006_class001.spisonet_claim"
    deadline = time.monotonic() + 120
    while not claim.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert claim.exists(), [p.communicate() for p in procs.values()]
    time.sleep(0.5)
    info = json.loads(claim.read_text())
    worker = int(info["worker"])
    procs[worker].send_signal(signal.SIGKILL)
    procs[worker].communicate()
    survivor = procs[3 - worker]
    start = time.monotonic()
    stdout, stderr = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, stderr
    assert time.monotonic() - start < 30
    assert "fallback" in stdout
    out = folder / f"run_it006_half{3 - worker}_class001_external_reconstruct.mrc"
    expected = relion_result(f"run_it004_half{3 - worker}_class001")
    assert rel_diff(read_result(out), expected) < 1e-6  # the plain map, complete
    assert "FALLBACK" in log_text(tmp_path, root)


def test_stale_markers_are_cleaned(tmp_path, monkeypatch):
    root = "Refine3D/job006/run"
    stars, folder = _pair_job(tmp_path, root, 7)
    old = folder / "run_it006_class001.spisonet_claim"
    old.write_text(json.dumps({"mode": "joint", "worker": 2}))
    crashed = folder / "run_it007_class001.spisonet_half2.arrived"
    crashed.write_text(json.dumps({"pid": 999999, "host": "elsewhere"}))
    stale_time = time.time() - 3600
    os.utime(crashed, (stale_time, stale_time))
    env = {**TINY, "ISONET_START_RESOLUTION": "1"}  # not corrected: only cleaning matters here
    assert run_main(tmp_path, stars[0], monkeypatch, env) == 0
    assert old.exists() and crashed.exists()  # no rendezvous when the correction does not run
    env = {**TINY, "ISONET_PARTNER_WAIT": "0.5", "ISONET_EPOCHS": "1"}
    assert run_main(tmp_path, stars[0], monkeypatch, env) == 0
    assert not old.exists() and not crashed.exists()
    log = log_text(tmp_path, root)
    assert "removed stale markers" in log and "did not start within" in log


def test_bin_script_runs_without_install(tmp_path):
    star = install_call(tmp_path, "run_it001_half2_class001")
    proc = spawn(tmp_path, star, {})
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    out = tmp_path / "Refine3D/job001/run_it001_half2_class001_external_reconstruct.mrc"
    assert rel_diff(read_result(out), relion_result("run_it001_half2_class001")) < 1e-6
    assert "metadata" in log_text(tmp_path)  # no run files: the reason is logged


def test_star_generators_are_readable(tmp_path):
    for version in ("3.1", "4.0", "5.0"):
        folder = tmp_path / version
        folder.mkdir()
        write_metadata(folder, "run", 2, version=version)
        blocks = starfile.read(folder / "run_it002_sampling.star", always_dict=True)
        assert int(blocks["sampling_general"]["rlnHealpixOrder"]) == 3


def test_unexpected_errors(tmp_path, monkeypatch, capsys):
    """A bug after the plain map keeps RELION going; before it, one line naming the STAR."""
    star = install_call(tmp_path, "run_it005_class001")

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(wrapper, "_joined_message", boom)
    assert run_main(tmp_path, star, monkeypatch) == 0
    out = tmp_path / "Refine3D/job001/run_it005_class001_external_reconstruct.mrc"
    assert rel_diff(read_result(out), relion_result("run_it005_class001")) < 1e-6
    assert "simulated bug" in log_text(tmp_path)

    def no_memory(*args, **kwargs):
        raise MemoryError("out of memory")

    out.unlink()
    monkeypatch.setattr(wrapper, "reconstruct", no_memory)
    assert run_main(tmp_path, star, monkeypatch) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and star in err[0] and "MemoryError" in err[0]
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# truncated STAR files, the plain path's imports, interruption, wording
def test_star_cut_inside_the_tau2_loop_is_rejected(tmp_path, monkeypatch, capsys):
    """A STAR file cut inside its tau2 loop: one line naming the file, exit 2, no result."""
    star = install_call(tmp_path, "run_it004_half1_class001")
    path = tmp_path / star
    text = path.read_text()
    cut_at_row = text.index("          10 ")  # rows 0-9 of 0-17 (current size 34) survive
    for cut in (text[:cut_at_row], text[: cut_at_row + 20]):  # at a row boundary, inside a row
        path.write_text(cut)
        assert run_main(tmp_path, star, monkeypatch) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and star in err[0] and "truncated" in err[0], err
    path.write_text(text[: text.index("data_external_reconstruct_tau2")])
    assert run_main(tmp_path, star, monkeypatch) == 2
    assert "no data_external_reconstruct_tau2 block" in capsys.readouterr().err
    assert not (tmp_path / star.replace(".star", ".mrc")).exists()


def test_plain_call_imports_nothing_heavy(tmp_path):
    star = install_call(tmp_path, "run_it004_half1_class001")
    write_metadata(tmp_path / "Refine3D/job001", ORIGINAL_ROOT, 3, healpix=2)
    code = (
        "import sys; from spIsoNet.relion.wrapper import main; rc = main([sys.argv[1]]); "
        "heavy = ('torch', 'pandas', 'starfile', 'matplotlib', 'scipy'); "
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules)); sys.exit(rc)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISONET_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", code, star], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    assert "correction skipped: healpix 2 < 3" in done.stdout
    log = log_text(tmp_path)
    assert "RELION's current 15.00 Å" in log and "this iteration's FSC 0.143" in log


def test_sigterm_is_logged_and_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    star = install_call(tmp_path, "run_it004_half1_class001")
    folder = tmp_path / "Refine3D/job001"
    write_metadata(folder, ORIGINAL_ROOT, 3, healpix=2)
    real = wrapper.reconstruct

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(wrapper, "reconstruct", interrupted)
    assert run_main(tmp_path, star, monkeypatch) == 128 + signal.SIGTERM
    assert "interrupted" in capsys.readouterr().err
    assert "interrupted by SIGTERM" in log_text(tmp_path)
    assert not (folder / "run_it004_half1_class001_external_reconstruct.mrc").exists()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def test_sigterm_while_waiting_for_the_partner(tmp_path):
    """A half waiting in the rendezvous stops within seconds: logged, markers gone, exit 143."""
    stars, folder = _pair_job(tmp_path, ORIGINAL_ROOT, 4)
    env = dict(TINY, ISONET_PARTNER_WAIT="600")
    proc = spawn(tmp_path, stars[0], env)
    marker = folder / "run_it004_class001.spisonet_half1.plain"
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate()
    time.sleep(1.0)  # inside the polling loop
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert time.monotonic() - started < 10
    assert "interrupted by SIGTERM" in stderr and "interrupted by SIGTERM" in log_text(tmp_path)
    assert not list(folder.glob("*.spisonet_half1.*")) and not list(folder.glob(".*.tmp"))
    # the plain map it wrote before waiting is complete and RELION's
    out = folder / "run_it004_half1_class001_external_reconstruct.mrc"
    assert rel_diff(read_result(out), relion_result("run_it004_half1_class001")) < 1e-6
