"""Model files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spIsoNet.engine.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint
from spIsoNet.engine.predict import predict_volume
from spIsoNet.engine.unet import UNet3D
from spIsoNet.errors import InputError

from .helpers import TINY, randomise, smooth_volume


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
