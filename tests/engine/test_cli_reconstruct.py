"""spisonet.py reconstruct: outputs, report, rejection."""

from __future__ import annotations

from pathlib import Path

from .helpers import tiny_case


def test_cli_reconstruct_writes_outputs_and_rejects_bad_fsc3d(tmp_path):
    from spIsoNet.cli.main import main
    from spIsoNet.io import write_map

    h1, h2, fsc = tiny_case()
    for name, data in (("emd_half_1.mrc", h1), ("emd_half_2.mrc", h2), ("fsc.mrc", fsc)):
        write_map(tmp_path / name, data, 2.0)
    write_map(tmp_path / "small.mrc", fsc[:16, :16, :16], 2.0)
    common = [
        str(tmp_path / "emd_half_1.mrc"),
        str(tmp_path / "emd_half_2.mrc"),
        "--limit_res",
        "5",
        "--epochs",
        "1",
        "--n_subvolume",
        "4",
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
        "--acc_batches",
        "1",
        "--seed",
        "1",
        "--device",
        "cpu",
        "--ncpus",
        "1",
    ]
    out = tmp_path / "out"
    bad = main(
        [
            "reconstruct",
            *common,
            "--aniso_file",
            str(tmp_path / "small.mrc"),
            "--output_dir",
            str(out),
        ]
    )
    assert bad == 2
    code = main(
        [
            "reconstruct",
            *common,
            "--aniso_file",
            str(tmp_path / "fsc.mrc"),
            "--output_dir",
            str(out),
            "--skip_metrics",
        ]
    )
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "corrected_emd_half_1.mrc",
        "corrected_emd_half_1_filtered.mrc",
        "corrected_emd_half_2.mrc",
        "corrected_emd_half_2_filtered.mrc",
        "emd_half.pt",
        "loss.png",
        "report.json",
    } <= names
    import json

    report = json.loads((out / "report.json").read_text())
    assert report["seed"] == 1 and report["settings"]["cube_size"] == 16
    assert Path(report["inputs"]["half_maps"][0]).name == "emd_half_1.mrc"
