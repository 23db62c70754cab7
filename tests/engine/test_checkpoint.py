"""Model files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spIsoNet.engine.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint
from spIsoNet.engine.predict import predict_volume
from spIsoNet.engine.unet import UNet3D
from spIsoNet.errors import InputError

from .helpers import TINY, randomise, smooth_volume, tiny_case, tiny_settings


def test_checkpoint_round_trip_is_exact(tmp_path):
    net = randomise(UNet3D(TINY), 3, 0.2)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss = net(torch.randn(1, 1, 8, 8, 8)).square().mean()
    loss.backward()
    opt.step()
    path = save_checkpoint(
        tmp_path / "m.pt",
        net,
        optimizer=opt,
        epoch=3,
        loss_history=[0.5, 0.4, 0.3],
        extra={"limit_res": 4.0},
    )
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["epoch"] == 3 and raw["loss_history"] == [0.5, 0.4, 0.3]
    state = load_checkpoint(path)
    again = build_from_checkpoint(state)
    volume = smooth_volume(16, 5)
    a = predict_volume(net, volume, tile=8, overlap=4)
    b = predict_volume(again, volume, tile=8, overlap=4)
    assert np.array_equal(a, b)
    opt2 = torch.optim.AdamW(again.parameters(), lr=1e-3)
    opt2.load_state_dict(state["optimizer_state"])
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    with pytest.raises(InputError, match="not a"):
        (tmp_path / "bad.pt").write_bytes(b"junk")
        load_checkpoint(tmp_path / "bad.pt")


def test_a_model_of_another_architecture_is_one_line_naming_the_file(tmp_path, caplog):
    import logging

    from spIsoNet.engine import correct_maps

    h1, h2, fsc = tiny_case()
    kw = dict(fsc3d_volume=fsc, limit_res=5.0)
    trained = correct_maps(h1, h2, 2.0, settings=tiny_settings(), output_dir=tmp_path, **kw)
    state = load_checkpoint(trained.model_path)
    state["config"]["width"] = 8  # weights of width 4 under a width-8 architecture
    bad = tmp_path / "other.pt"
    torch.save(state, bad)
    with pytest.raises(InputError) as info:
        correct_maps(
            h1,
            h2,
            2.0,
            settings=tiny_settings(epochs=0),
            pretrained_model=bad,
            output_dir=tmp_path / "p",
            **kw,
        )
    text = str(info.value)
    assert text.startswith(f"{bad}: its weights do not fit its architecture (width 8, depth 1")
    assert "\n" not in text
    # --resume over a checkpoint of another architecture
    with pytest.raises(
        InputError, match="cannot resume: its network \\(width 4.*this run's \\(width 8"
    ):
        correct_maps(
            h1,
            h2,
            2.0,
            settings=tiny_settings(net_width=8, resume=True),
            output_dir=tmp_path,
            **kw,
        )
    # a model trained at another voxel size is used, with a warning naming it
    with caplog.at_level(logging.WARNING, logger="spIsoNet"):
        correct_maps(
            h1,
            h2,
            3.0,
            settings=tiny_settings(epochs=0),
            pretrained_model=trained.model_path,
            output_dir=tmp_path / "q",
            fsc3d_volume=fsc,
            limit_res=7.0,
        )
    assert (
        f"{trained.model_path}: trained on maps of 2.000 Å/voxel, these have 3.000" in caplog.text
    )
