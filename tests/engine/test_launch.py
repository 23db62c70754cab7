"""The process modes: spawned DDP processes, the launcher environment, torchrun."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from spIsoNet.engine import correct_maps
from spIsoNet.engine.checkpoint import load_checkpoint
from spIsoNet.errors import InputError

from .helpers import tiny_case, tiny_settings


def test_pipeline_spawned_processes_match_single_process(tmp_path):
    """The multi-process path of correct_maps (one process per GPU; gloo on CPU here)."""
    h1, h2, fsc = tiny_case()
    single = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(epochs=2, acc_batches=2),
        output_dir=tmp_path / "one",
    )
    spawned = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(epochs=2, acc_batches=1, cpu_processes=2),
        output_dir=tmp_path / "two",
    )
    assert "2 process" in spawned.device
    assert spawned.loss_history == pytest.approx(single.loss_history, rel=1e-5)
    for a, b in zip(spawned.filtered, single.filtered):
        np.testing.assert_allclose(a, b, atol=1e-4)
    state = load_checkpoint(tmp_path / "two" / "model.pt")
    assert state["epoch"] == 2


def test_launcher_environment_parsing():
    from spIsoNet.engine.device import launcher_env

    assert launcher_env({}) is None
    assert launcher_env({"RANK": "0", "WORLD_SIZE": "1"}) is None
    env = {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "node1",
        "MASTER_PORT": "29500",
    }
    got = launcher_env(env)
    assert (got.rank, got.world_size, got.local_rank, got.local_world_size) == (3, 4, 1, 2)
    with pytest.raises(InputError, match="MASTER_ADDR"):
        launcher_env({"RANK": "0", "WORLD_SIZE": "2"})


def test_torchrun_launch_on_cpu_matches_single_process(tmp_path):
    """``torchrun --nproc_per_node 2 spisonet.py reconstruct``: Gloo DDP, rank 0 writes outputs."""
    import subprocess
    import sys

    from spIsoNet.io import read_map, write_map

    h1, h2, fsc = tiny_case()
    for name, data in (("h_1.mrc", h1), ("h_2.mrc", h2), ("fsc.mrc", fsc)):
        write_map(tmp_path / name, data, 2.0)
    args = [
        "reconstruct",
        str(tmp_path / "h_1.mrc"),
        str(tmp_path / "h_2.mrc"),
        "--aniso_file",
        str(tmp_path / "fsc.mrc"),
        "--limit_res",
        "5",
        "--epochs",
        "1",
        "--n_subvolume",
        "8",
        "--cube_size",
        "16",
        "--predict_crop_size",
        "16",
        "--net_width",
        "4",
        "--net_depth",
        "1",
        "--batch_size",
        "4",
        "--seed",
        "2",
        "--device",
        "cpu",
        "--ncpus",
        "2",
        "--skip_metrics",
    ]
    launcher = Path(__file__).resolve().parents[2] / "bin" / "spisonet.py"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(launcher),
            *args,
            "--acc_batches",
            "1",
            "--output_dir",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    # the ranks' own messages come first, torchrun's summary last: keep both in the report
    assert run.returncode == 0, run.stderr[:3000] + "\n...\n" + run.stderr[-1500:]
    from spIsoNet.cli.main import main

    assert main([*args, "--acc_batches", "2", "--output_dir", str(tmp_path / "one")]) == 0
    for name in ("corrected_h_1_filtered.mrc", "corrected_h_2.mrc"):
        a = read_map(tmp_path / "ddp" / name).data
        b = read_map(tmp_path / "one" / name).data
        np.testing.assert_allclose(a, b, atol=1e-4)
