"""RELION plugin pieces without the vectors: call names, settings, metadata, rendezvous."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spIsoNet.errors import InputError
from spIsoNet.relion.call import ROLE_HALF, ROLE_JOINED, ROLE_OTHER, parse_root
from spIsoNet.relion.metadata import has_option, option_value, read_iteration_metadata
from spIsoNet.relion.settings import PluginSettings, SettingsError, read_settings
from spIsoNet.relion.sync import MODE_SOLO, MODE_WAITER, MODE_WORKER, Rendezvous


# ------------------------------------------------------------------------------------------
# call names
@pytest.mark.parametrize(
    "star, role, output_root, iteration, half, kind, index",
    [
        (
            "Refine3D/job012/run_it007_half1_class001",
            ROLE_HALF,
            "Refine3D/job012/run",
            7,
            1,
            "class",
            1,
        ),
        (
            "R/j/my_run_v2_it3_it123_half2_body002",
            ROLE_HALF,
            "R/j/my_run_v2_it3",
            123,
            2,
            "body",
            2,
        ),
        ("R/j/run_it1000_class003", ROLE_JOINED, "R/j/run", 1000, None, "class", 3),
        ("run_half1_class001", ROLE_HALF, "run", None, 1, "class", 1),
        ("Refine3D/job1/recon", ROLE_OTHER, "Refine3D/job1/recon", None, None, None, None),
    ],
)
def test_parse_root(star, role, output_root, iteration, half, kind, index):
    call = parse_root(star + "_external_reconstruct.star")
    assert (call.root, call.role, call.output_root) == (star, role, output_root)
    assert (call.iteration, call.half, call.kind, call.index) == (iteration, half, kind, index)


def test_partner_and_iteration_roots():
    call = parse_root("R/j/my_run_it100_half1_class001_external_reconstruct.star")
    assert call.partner.root == "R/j/my_run_it100_half2_class001"
    assert call.with_half(None).root == "R/j/my_run_it100_class001"
    assert call.iteration_root(99) == "R/j/my_run_it099"
    assert parse_root("a/b_it1000_half2_class001_external_reconstruct.star").iteration_root(
        999
    ) == ("a/b_it999")
    with pytest.raises(InputError, match="_external_reconstruct.star"):
        parse_root("run_it001_half1_class001.star")


# ------------------------------------------------------------------------------------------
# settings
def test_settings_defaults_are_the_published_ones():
    settings, warnings = read_settings({})
    assert (settings.start_healpix, settings.start_resolution, settings.epochs) == (3, 15.0, 5)
    assert (settings.alpha, settings.beta, settings.acc_batches) == (1.0, 0.5, 2)
    assert settings.retrain_each_iter and not settings.keep_lowres
    assert settings.whitening and settings.whitening_low == 10.0
    assert settings.fsc_weighting and settings.lowpass
    assert settings.sync_timeout == 7200.0 and not settings.strict and not settings.fsc_feedback
    assert warnings == []


def test_settings_parse_and_reject():
    env = {
        "ISONET_EPOCHS": " 7 ",
        "ISONET_WHITENING": "no",
        "ISONET_GPUS": "1,3",
        "ISONET_START_RESOLUTION": "8.5",
        "ISONET_3DFSD": "True",
        "ISONET_TYPO": "1",
    }
    settings, warnings = read_settings(env)
    assert settings.epochs == 7 and not settings.whitening and settings.gpus == (1, 3)
    assert settings.start_resolution == 8.5
    assert any("ISONET_3DFSD" in w for w in warnings) and any("ISONET_TYPO" in w for w in warnings)
    bad = {"ISONET_EPOCHS": "2.5", "ISONET_LOWPASS": "maybe", "ISONET_START_RESOLUTION": "0"}
    with pytest.raises(SettingsError) as info:
        read_settings(bad)
    message = str(info.value)
    assert "ISONET_EPOCHS='2.5'" in message and "ISONET_LOWPASS='maybe'" in message
    assert "ISONET_START_RESOLUTION='0'" in message and "\n" not in message
    for name, value in [("ISONET_GPUS", "0,0"), ("ISONET_DEVICE", "tpu"), ("ISONET_BETA", "nan")]:
        with pytest.raises(SettingsError, match=name):
            read_settings({name: value})
    assert "ISONET_SYNC_TIMEOUT" in PluginSettings.env_names()


# ------------------------------------------------------------------------------------------
# metadata
def _kv(path: Path, block: str, items: dict, comment: str = "") -> None:
    body = "\n".join(f"_{k} {v}" for k, v in items.items())
    path.write_text(f"{comment}\n# version 30001\n\ndata_{block}\n\n{body}\n")


def test_command_line_options():
    line = "--o R/run --ini_high 30 --keep_lowres --sequential_halves_recons --j 4"
    assert option_value(line, "--ini_high") == "30"
    assert has_option(line, "--keep_lowres") and has_option(line, "--sequential_halves_recons")
    assert option_value(line, "--ref") is None and not has_option(line, "--ini")


def test_metadata_pixel_size_fallbacks_and_first_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "R"
    folder.mkdir()
    first = "# RELION optimiser; version 3.1.4\n# --o R/run --ini_high 25.5 --keep_lowres "
    later = "# RELION optimiser; version 3.1.4\n# --continue R/run_it002_optimiser.star "
    _kv(
        folder / "run_it000_optimiser.star",
        "optimiser_general",
        {"rlnSolventMaskName": "None"},
        first,
    )
    _kv(
        folder / "run_it004_optimiser.star",
        "optimiser_general",
        {"rlnSolventMaskName": "R/missing_mask.mrc", "rlnParticleDiameter": 180},
        later,
    )
    _kv(
        folder / "run_it004_sampling.star",
        "sampling_general",
        {"rlnHealpixOrder": 4, "rlnHealpixOrderOriginal": 2, "rlnSymmetryGroup": "D7"},
    )
    (folder / "run_it004_data.star").write_text(
        "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroupName #1\n"
        "_rlnImagePixelSize #2\nopticsGroup1 1.346\n\n# version 30001\n\ndata_particles\n\n"
        "loop_\n_rlnImageName #1\n1@x.mrcs\n"
    )
    call = parse_root("R/run_it005_half2_class001_external_reconstruct.star")
    meta = read_iteration_metadata(call, None)
    assert meta.healpix_order == 4 and meta.symmetry == "D7"
    assert meta.pixel_size == pytest.approx(1.346) and "data.star" in meta.pixel_size_source
    assert meta.ini_high == 25.5 and meta.keep_lowres and not meta.sequential_halves
    assert meta.solvent_mask is None and any("missing_mask" in n for n in meta.notes)
    assert meta.particle_diameter == 180
    assert meta.previous_halfmaps[1] == "R/run_it004_half1_class001.mrc"
    assert read_iteration_metadata(call, 1.1).pixel_size == 1.1  # the STAR's value wins
    (folder / "run_it004_sampling.star").unlink()
    with pytest.raises(InputError, match="run_it004_sampling.star"):
        read_iteration_metadata(call, 1.1)


# ------------------------------------------------------------------------------------------
# rendezvous
def _pair(tmp_path: Path, **kw):
    folder = tmp_path / "job"
    folder.mkdir(exist_ok=True)
    options = dict(partner_wait=5.0, sync_timeout=20.0, heartbeat_timeout=5.0, poll=0.05)
    options.update(kw)
    out = []
    for half in (1, 2):
        star = folder / f"run_it009_half{half}_class001_external_reconstruct.star"
        star.write_text("x")
        call = parse_root(str(star))
        out.append(Rendezvous(call, str(star), **options))
    return out


def test_rendezvous_joint(tmp_path):
    halves = _pair(tmp_path)
    modes = {}

    def run(rdv):
        rdv.clean_stale()
        rdv.announce()
        rdv.mark_plain_ready()
        modes[rdv.half] = rdv.resolve()[0]

    threads = [threading.Thread(target=run, args=(r,)) for r in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(modes.values()) == sorted([MODE_WORKER, MODE_WAITER])
    worker = next(r for r in halves if modes[r.half] == MODE_WORKER)
    waiter = next(r for r in halves if modes[r.half] == MODE_WAITER)
    worker.publish_for_partner("corrected", "ok", "some.mrc", fsc=[1.0, 0.5])
    outcome = waiter.wait_for_worker()
    assert (outcome.status, outcome.map_path, outcome.fsc) == ("corrected", "some.mrc", [1.0, 0.5])
    for r in halves:
        r.close()
    assert not list((tmp_path / "job").glob("*.arrived"))


def test_rendezvous_alone_and_dead_partner(tmp_path):
    half1, half2 = _pair(tmp_path, partner_wait=0.3)
    half1.announce()
    half1.mark_plain_ready()
    mode, reason = half1.resolve()
    assert mode == MODE_SOLO and "did not start" in reason
    half1.close()
    # half2 comes later (sequential): its STAR is written after half1 returned, long after
    # half1's claim; the claim still counts and half2 goes solo at once
    old = half1.star_path.stat().st_mtime - 3600
    for path in (half1.star_path, half1.claim_path):
        os.utime(path, (old, old))
    late = Rendezvous(
        half2.call,
        str(half2.star_path),
        partner_wait=30.0,
        sync_timeout=30.0,
        heartbeat_timeout=5.0,
        poll=0.05,
    )
    late.announce()
    late.mark_plain_ready()
    start = time.monotonic()
    assert late.resolve()[0] == MODE_SOLO
    assert time.monotonic() - start < 5
    late.close()


def test_rendezvous_detects_a_dead_partner(tmp_path):
    half1, half2 = _pair(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    marker = half2.marker("arrived", 2)
    marker.write_text(json.dumps({"pid": gone.pid, "host": half1.host}))
    half1.announce()
    half1.mark_plain_ready()
    mode, reason = half1.resolve()
    assert mode == MODE_SOLO and "gone" in reason
    # a waiter whose worker died gives up and leaves an 'abandoned' marker
    half1.claim_path.unlink()
    outcome = half1.wait_for_worker()
    assert outcome.status == "dead"
    assert half1.marker("abandoned", 1).exists()
    half1.close()


def test_rendezvous_timeout(tmp_path):
    half1, half2 = _pair(tmp_path, sync_timeout=0.3)
    half2.announce()  # alive partner that never delivers
    half1.announce()
    outcome = half1.wait_for_worker()
    assert outcome.status == "timeout"
    half1.close()
    half2.close()


def test_stale_markers_of_other_iterations_are_removed(tmp_path):
    half1, _ = _pair(tmp_path)
    folder = tmp_path / "job"
    old = folder / "run_it008_class001.spisonet_claim"
    other_class = folder / "run_it008_class002.spisonet_claim"
    current = folder / "run_it009_class001.spisonet_half2.arrived"
    for path in (old, other_class, current):
        path.write_text("{}")
    removed = half1.clean_stale()
    assert removed == [old.name] and other_class.exists() and current.exists()
    stale = half1.star_path.stat().st_mtime - 3600
    os.utime(current, (stale, stale))
    assert half1.clean_stale() == [current.name]


def test_the_final_call_removes_the_last_half_iterations_markers(tmp_path):
    from spIsoNet.relion.call import parse_root
    from spIsoNet.relion.sync import remove_markers

    folder = tmp_path / "job"
    folder.mkdir(exist_ok=True)
    left = [
        folder / "run_it007_class001.spisonet_claim",
        folder / "run_it007_class001.spisonet_half1.done",
    ]
    keep = [folder / "run_it007_class002.spisonet_claim", folder / "run_it008_class001.mrc"]
    for path in left + keep:
        path.write_text("{}")
    final = parse_root(str(folder / "run_it008_class001_external_reconstruct.star"))
    assert sorted(remove_markers(final)) == sorted(p.name for p in left)
    assert not any(p.exists() for p in left) and all(p.exists() for p in keep)


# ------------------------------------------------------------------------------------------
# engine settings from the environment
def test_engine_settings_mapping():
    from spIsoNet.relion.settings import engine_settings

    settings, _ = read_settings(
        {"ISONET_GPUS": "2,3", "ISONET_EPOCHS": "9", "ISONET_CUBE_SIZE": "96"}
    )
    engine = engine_settings(settings, box=72)
    assert engine.device == "cuda" and engine.gpu_ids == [2, 3]
    assert engine.epochs == 9 and engine.cube_size == 72 and engine.predict_crop_size == 72
    assert not engine.show_progress
    cpu, _ = read_settings({"ISONET_DEVICE": "cpu", "ISONET_GPUS": "1"})
    assert engine_settings(cpu, box=200).device == "cpu"
    default, _ = read_settings({})
    engine = engine_settings(default, box=50)
    assert engine.device == "auto" and engine.gpu_ids is None
    # sizes not given follow the device: the published network on a GPU (cube 64 capped at
    # the box), the CPU-sized one with a time limit per call on a CPU
    gpu = engine_settings(read_settings({"ISONET_DEVICE": "cuda"})[0], box=50)
    assert (gpu.cube_size, gpu.net_width, gpu.predict_crop_size) == (48, 64, 50)
    assert gpu.n_subvolume == 1000 and gpu.time_limit is None
    cpu = engine_settings(read_settings({"ISONET_DEVICE": "cpu"})[0], box=50)
    assert (cpu.cube_size, cpu.net_width, cpu.predict_crop_size) == (32, 16, 48)
    assert cpu.n_subvolume == 200 and cpu.time_limit == 45.0
    given = {"ISONET_DEVICE": "cpu", "ISONET_NET_WIDTH": "8", "ISONET_TIME_LIMIT": "10"}
    mine = engine_settings(read_settings(given)[0], box=50)
    assert mine.net_width == 8 and mine.time_limit == 10.0 and mine.cube_size == 32


# ------------------------------------------------------------------------------------------
# the small STAR reader and the external STAR's checks (no vectors needed)
STAR = "_external_reconstruct.star"
GENERAL = """
# version 50001

data_external_reconstruct_general

_rlnExtReconsDataReal        J/r_it004_half1_class001_external_reconstruct_data_real.mrc
_rlnExtReconsDataImag        J/r_it004_half1_class001_external_reconstruct_data_imag.mrc
_rlnExtReconsWeight          J/r_it004_half1_class001_external_reconstruct_weight.mrc
_rlnExtReconsResult          J/r_it004_half1_class001_external_reconstruct.mrc
_rlnTau2FudgeFactor          1.000000
_rlnPaddingFactor            2.000000
_rlnReferenceDimensionality  3
_rlnOriginalImageSize        16
_rlnCurrentImageSize         10
_rlnPixelSize                2.000000
"""


def _tau2_block(rows: int, labels=("rlnSpectralIndex", "rlnReferenceTau2", "rlnGoldStandardFsc")):
    lines = ["", "# version 50001", "", "data_external_reconstruct_tau2", "", "loop_ "]
    lines += [f"_{label} #{i + 1} " for i, label in enumerate(labels)]
    for shell in range(rows):
        values = [f"{shell:12d}", "1.0e-04", f"{max(0.0, 1 - shell / 6):.6f}"]
        lines.append(" ".join(values[: len(labels)]))
    return "\n".join(lines) + "\n"


def test_star_reader_blocks_loops_and_quotes(tmp_path):
    from spIsoNet.io.star import StarLoop, read_star

    path = tmp_path / "a.star"
    path.write_text(GENERAL + _tau2_block(9) + "\ndata_q\n\n_rlnName 'a b'\n")
    blocks = read_star(path)
    general = blocks["external_reconstruct_general"]
    assert general["rlnOriginalImageSize"] == 16 and general["rlnPixelSize"] == 2.0
    table = blocks["external_reconstruct_tau2"]
    assert isinstance(table, StarLoop) and table.n_rows == 9
    assert table["rlnSpectralIndex"] == list(range(9)) and blocks["q"]["rlnName"] == "a b"


def test_star_row_cut_in_the_middle_is_an_error(tmp_path):
    from spIsoNet.io.star import read_star

    path = tmp_path / "cut.star"
    path.write_text(GENERAL + _tau2_block(9)[:-12])  # the last row loses a value
    with pytest.raises(InputError, match=r"cut.star: truncated or malformed.*expected 3"):
        read_star(path)


@pytest.mark.parametrize(
    "tau2, message",
    [
        (_tau2_block(4), r"truncated or inconsistent: 4 rows, shells 4…5 of the 0…5"),
        (_tau2_block(9, ("rlnSpectralIndex", "rlnGoldStandardFsc")), "has no rlnReferenceTau2"),
        ("\ndata_external_reconstruct_tau2\n\n", "is not a loop"),
    ],
)
def test_external_star_with_a_short_or_inconsistent_tau2_table(tmp_path, tau2, message):
    from spIsoNet.relion.call import read_external_star

    path = tmp_path / "J" / "r_it004_half1_class001_external_reconstruct.star"
    path.parent.mkdir()
    path.write_text(GENERAL + tau2)
    with pytest.raises(InputError, match=message) as info:
        read_external_star(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_external_star_reads_without_pandas(tmp_path):
    path = tmp_path / "r_external_reconstruct.star"
    path.write_text(GENERAL + _tau2_block(9))
    code = (
        "import sys; from spIsoNet.relion.call import read_external_star; "
        f"e = read_external_star({str(path)!r}); assert e.tau2.shape == (9,); "
        "print(sorted(m for m in ('pandas', 'starfile', 'torch', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------
# resolution policy
def test_fsc_crossing_measured_and_truncated():
    import numpy as np

    from spIsoNet.relion.resolution import fsc_crossing

    fsc = np.zeros(33)
    fsc[:18] = np.linspace(1.0, 0.3, 18)  # still 0.3 at the last carried shell (17)
    truncated = fsc_crossing(fsc, 64, 2.0, 34)
    assert truncated.truncated and truncated.angstrom == pytest.approx(128 / 17)
    assert "at least as fine as 7.53 Å" in truncated.describe()
    assert "FSC truncated at the current size" in truncated.describe()
    fsc[9:18] = 0.05  # crosses between shells 8 and 9
    measured = fsc_crossing(fsc, 64, 2.0, 34)
    assert not measured.truncated and 8 < measured.shell < 9
    assert measured.describe().startswith("FSC 0.143 = ")


def test_plan_resolution_prefers_relions_and_respects_the_current_size():
    import numpy as np

    from spIsoNet.relion.resolution import plan_resolution

    fsc = np.zeros(33)
    fsc[:18] = np.linspace(1.0, 0.3, 18)
    plan = plan_resolution(18.3, fsc, 64, 2.0, 34)
    assert plan.use == 18.3 and "RELION" in plan.source and plan.fsc.truncated
    assert "RELION's current 18.30 Å" in plan.describe()
    # finer than the current size carries: limited to its Nyquist
    assert plan_resolution(5.0, fsc, 64, 2.0, 34).use == pytest.approx(128 / 17)
    # no RELION resolution and a truncated FSC: the edge (the resolution is at least that fine)
    edge = plan_resolution(None, fsc, 64, 2.0, 34)
    assert edge.use == pytest.approx(128 / 17) and "truncated" in edge.source
    assert plan_resolution(None, None, 64, 2.0, 34).use is None
    fsc[9:18] = 0.05
    assert 14 < plan_resolution(None, fsc, 64, 2.0, 34).use < 16


def test_metadata_reads_relions_current_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("run_it003_half2_model.star").write_text(
        "data_model_general\n_rlnCurrentResolution 18.285714\n_rlnPixelSize 2.0\n"
    )
    Path("run_it003_half1_model.star").write_text(
        "data_model_general\n_rlnCurrentResolution 20.0\n_rlnPixelSize 2.0\n"
    )
    meta = read_iteration_metadata(
        parse_root("run_it004_half2_class001" + STAR), None, need_previous=False
    )
    assert meta.current_resolution == pytest.approx(18.285714)
    assert meta.model_file == "run_it003_half2_model.star"
    Path("run_it003_half2_model.star").write_text("data_model_general\n_rlnCurrentResolution inf\n")
    meta = read_iteration_metadata(
        parse_root("run_it004_half2_class001" + STAR), None, need_previous=False
    )
    assert meta.current_resolution is None


# ------------------------------------------------------------------------------------------
# new settings, the engine settings built once, --help
def test_new_settings_are_validated():
    settings, _ = read_settings(
        {
            "ISONET_NET_DEPTH": "2",
            "ISONET_LEARNING_RATE": "1e-3",
            "ISONET_PREDICT_CROP": "48",
            "ISONET_NCPUS": "1",
            "ISONET_TIME_LIMIT": "30",
            "ISONET_WARM_START": "no",
        }
    )
    assert (settings.net_depth, settings.learning_rate, settings.predict_crop) == (2, 1e-3, 48)
    assert settings.ncpus == 1 and settings.time_limit == 30.0 and not settings.warm_start
    for name, value in [
        ("ISONET_NET_DEPTH", "0"),
        ("ISONET_LEARNING_RATE", "0"),
        ("ISONET_PREDICT_CROP", "4"),
        ("ISONET_NCPUS", "0"),
        ("ISONET_TIME_LIMIT", "-5"),
        ("ISONET_WARM_START", "maybe"),
    ]:
        with pytest.raises(SettingsError, match=name):
            read_settings({name: value})


def test_engine_settings_are_built_once_and_named_in_isonet_terms():
    from spIsoNet.engine.device import cpu_threads  # the plugin uses the engine's policy
    from spIsoNet.relion.settings import engine_settings

    settings, _ = read_settings(
        {
            "ISONET_NET_DEPTH": "4",
            "ISONET_TIME_LIMIT": "12",
            "ISONET_LEARNING_RATE": "1e-3",
            "ISONET_DEVICE": "cuda",  # the GPU-sized defaults (the CPU's are tested above)
        }
    )
    engine = engine_settings(settings, box=64, environ={"OMP_NUM_THREADS": "1"})
    assert engine.net_depth == 4 and engine.time_limit == 12.0 and engine.learning_rate == 1e-3
    assert engine.cube_size == 64 and engine.ncpus == 1 and engine.predict_crop_size == 64
    bad, _ = read_settings({"ISONET_NET_DEPTH": "4", "ISONET_CUBE_SIZE": "40"})
    with pytest.raises(InputError, match="ISONET_CUBE_SIZE"):
        engine_settings(bad, box=200)
    assert cpu_threads(None, {"OMP_NUM_THREADS": "1"}) == 1
    assert cpu_threads(1, {}) == 1 and cpu_threads(None, {}) >= 1


def test_strict_is_read_leniently():
    from spIsoNet.relion.settings import strict_from_env

    assert strict_from_env({"ISONET_STRICT": "yes"}) and not strict_from_env({})
    assert not strict_from_env({"ISONET_STRICT": "garbage"})


def test_help_lists_every_setting_without_importing_torch():
    code = (
        "import sys; from spIsoNet.relion.wrapper import main; rc = main(['--help']); "
        "print('HEAVY', sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout and "README" in done.stdout
    for name in PluginSettings.env_names():
        assert name in done.stdout
    assert "ISONET_TIME_LIMIT" in done.stdout and "[5]" in done.stdout  # default epochs
    short = subprocess.run(
        [sys.executable, "-m", "spIsoNet.relion.wrapper", "-h"], capture_output=True, text=True
    )
    assert short.returncode == 0 and "ISONET_START_HEALPIX" in short.stdout


# ------------------------------------------------------------------------------------------
# markers get the umask's permissions (mkstemp's 0600 before)
def test_rendezvous_markers_get_umask_permissions(tmp_path):
    from spIsoNet.relion.sync import _write_json_atomic

    old = os.umask(0o022)
    try:
        assert _write_json_atomic(tmp_path / "m.json", {"a": 1})
        assert _write_json_atomic(tmp_path / "claim", {"a": 1}, exclusive=True)
        assert not _write_json_atomic(tmp_path / "claim", {"a": 2}, exclusive=True)
    finally:
        os.umask(old)
    for name in ("m.json", "claim"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    assert json.loads((tmp_path / "claim").read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claim", "m.json"]


# ------------------------------------------------------------------------------------------
# warm start: previous iteration's model of the same class/half, same architecture
def _job(tmp_path, environ):
    import numpy as np

    from spIsoNet.relion.call import ExternalStar
    from spIsoNet.relion.decision import Outcome, Plan
    from spIsoNet.relion.metadata import IterationMetadata
    from spIsoNet.relion.modes import CorrectionJob
    from spIsoNet.relion.resolution import plan_resolution

    call = parse_root(str(tmp_path / "run_it005_half1_class001") + STAR)
    ext = ExternalStar(
        str(tmp_path / "x.star"), "r", "i", "w", "out.mrc", None, 1.0, 2.0, 3, 32, 32
    )
    meta = IterationMetadata(pixel_size=2.0)
    plan = Plan(Outcome.CORRECT, "", meta=meta, resolution=plan_resolution(10.0, None, 32, 2, 32))
    settings, _ = read_settings(environ)
    return CorrectionJob(call, ext, settings, plan, np.zeros((32, 32, 32), np.float32), {})


def test_warm_start_uses_the_previous_model_when_the_architecture_matches(tmp_path, monkeypatch):
    import spIsoNet.engine.checkpoint as checkpoint

    configs = {"width": 8, "depth": 3}
    monkeypatch.setattr(checkpoint, "load_checkpoint", lambda path: {"config": dict(configs)})
    folder = tmp_path / "spisonet"
    job = _job(tmp_path, {"ISONET_NET_WIDTH": "8"})
    assert job.model_location() == (folder, "run_it005_class001", None)  # no previous model
    folder.mkdir()
    (folder / "run_it004_class001.pt").write_bytes(b"x")
    _, key, pretrained = job.model_location()
    assert key == "run_it005_class001" and pretrained == str(folder / "run_it004_class001.pt")
    configs["width"] = 16  # another architecture: from scratch
    assert job.model_location()[2] is None
    configs["width"] = 8
    assert (
        _job(tmp_path, {"ISONET_NET_WIDTH": "8", "ISONET_WARM_START": "0"}).model_location()[2]
        is None
    )
    retrain = {"ISONET_NET_WIDTH": "8", "ISONET_RETRAIN_EACH_ITER": "True"}
    assert _job(tmp_path, retrain).model_location()[2] is None
    (folder / "run_it004_class001_half1.pt").write_bytes(b"x")
    assert job.model_location("_half1")[2] == str(folder / "run_it004_class001_half1.pt")


# ------------------------------------------------------------------------------------------
# logging: the job log gets everything, stdout (RELION's run.out) summaries and progress
def test_console_gets_summaries_and_training_progress_only(tmp_path, capsys):
    from spIsoNet.log import get_logger, setup_tagged_logging, summary

    setup_tagged_logging(tmp_path / "job.log", "it004 half1 class001 pid 1")
    relion, engine = get_logger("relion"), get_logger("engine")
    relion.info("detail for the log only")
    summary(relion, "correction skipped: %s", "healpix 2 < 3")
    engine.info(
        "%s: epoch %d/%d step %d/%d loss %.5f, %.2f s/step, ETA %s",
        "m",
        1,
        5,
        3,
        250,
        0.1,
        2.0,
        "5 min",
    )
    engine.info("network config for the log only")
    relion.warning("a warning")
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "spIsoNet [it004 half1 class001 pid 1] correction skipped: healpix 2 < 3",
        "spIsoNet [it004 half1 class001 pid 1] m: epoch 1/5 step 3/250 loss 0.10000, 2.00 s/step,"
        " ETA 5 min",
        "spIsoNet [it004 half1 class001 pid 1] a warning",
    ]
    text = (tmp_path / "job.log").read_text()
    assert "detail for the log only" in text and "network config for the log only" in text
    assert "[it004 half1 class001 pid 1]" in text


# ------------------------------------------------------------------------------------------
# the reconstruction's FFT choices agree with numpy's full transforms
def test_fftw_and_pruned_inverse_agree_with_numpy():
    import numpy as np

    from spIsoNet.relion import _fftw
    from spIsoNet.relion.reconstruction import _FFT, GridGeometry, centred_inverse

    rng = np.random.default_rng(0)
    geom = GridGeometry.from_call(32, 24, 2.0)  # P = 51, Pe = 64, R = 24
    p, pe, n = geom.grid_internal, geom.grid_even, geom.ori_size
    k = np.fft.fftfreq(p, 1.0 / p)
    kx = np.arange(p // 2 + 1)
    inside = k[:, None, None] ** 2 + k[None, :, None] ** 2 + kx**2 < geom.R**2
    spectrum = (rng.standard_normal(inside.shape) + 1j * rng.standard_normal(inside.shape)) * inside
    fft = _FFT(p)
    ours = centred_inverse(spectrum, geom, fft)
    full = np.zeros((pe, pe, pe // 2 + 1), complex)
    sig = np.r_[0 : geom.R, p - geom.R + 1 : p]
    sig_e = np.r_[0 : geom.R, pe - geom.R + 1 : pe]
    full[np.ix_(sig_e, sig_e, np.arange(geom.R))] = spectrum[np.ix_(sig, sig, np.arange(geom.R))]
    keep = (np.arange(n) - n // 2) % pe
    reference = np.fft.irfftn(full, s=(pe,) * 3, axes=(0, 1, 2))[np.ix_(keep, keep, keep)]
    assert np.abs(ours - reference).max() <= 1e-12 * np.abs(reference).max()
    volume = rng.standard_normal((p, p, p))
    assert np.allclose(fft.rfftn(volume), np.fft.rfftn(volume), rtol=0, atol=1e-9)
    half = np.fft.rfftn(volume)
    assert np.allclose(fft.irfftn(half, p), volume, rtol=0, atol=1e-12)
    assert (fft.fftw is not None) == _fftw.available()


def test_reconstruction_is_the_same_without_fftw(monkeypatch):
    """Where libfftw3 cannot be loaded numpy's FFT gives the same map (to rounding)."""
    import numpy as np

    from spIsoNet.relion import _fftw
    from spIsoNet.relion.reconstruction import GridGeometry, reconstruct

    rng = np.random.default_rng(2)
    geom = GridGeometry.from_call(24, 18, 2.0)
    shape = geom.file_shape
    k = np.fft.fftfreq(shape[0], 1.0 / shape[0])
    r2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + np.arange(shape[2]) ** 2
    inside = r2 < geom.R**2
    weight = (1e4 / (1.0 + r2) * inside).astype(np.float32)
    real = (weight * rng.standard_normal(shape) * 1e-3).astype(np.float32)
    imag = (weight * rng.standard_normal(shape) * 1e-3).astype(np.float32)
    kw = dict(ori_size=24, current_size=18, padding_factor=2.0, tau2=np.full(13, 1e-3))
    with_fftw = reconstruct(real, imag, weight, **kw)
    monkeypatch.setattr(_fftw, "available", lambda: False)
    without = reconstruct(real, imag, weight, **kw)
    assert np.abs(with_fftw - without).max() <= 1e-6 * np.abs(without).max()
