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


# ------------------------------------------------------------------------------------------
# engine settings from the environment
def test_engine_settings_mapping():
    from spIsoNet.relion.wrapper import engine_settings

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
    assert engine.device == "auto" and engine.gpu_ids is None and engine.cube_size == 48
