"""Network locality and tiled prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spIsoNet.engine.predict import predict_volume
from spIsoNet.engine.unet import UNet3D, UNetConfig, receptive_radius

from .helpers import randomise, smooth_volume

# --------------------------------------------------------------------------------------------
# prediction and checkpoints


def test_receptive_radius_bounds_the_impulse_response():
    cfg = UNetConfig(width=3, depth=2, n_conv=1, norm="none")
    net = randomise(UNet3D(cfg), 1).eval()
    n = 64
    base = torch.zeros(1, 1, n, n, n)
    poked = base.clone()
    poked[0, 0, 32, 32, 32] = 1.0
    with torch.no_grad():
        diff = (net(poked) - net(base)).abs()[0, 0]
    changed = diff.nonzero()
    reach = (changed - 32).abs().max().item()
    assert 0 < reach <= receptive_radius(cfg)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_tiled_prediction_matches_whole_volume(norm):
    cfg = UNetConfig(width=4, depth=1, n_conv=1, norm=norm)
    net = randomise(UNet3D(cfg), 2, 0.2)
    if norm == "batch":
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    net.eval()
    volume = smooth_volume(40, 4)
    with torch.no_grad():
        whole = net(torch.from_numpy(volume)[None, None])[0, 0].numpy()
    margin = receptive_radius(cfg)  # 10 for this network
    tiled = predict_volume(
        net, volume, tile=32, overlap=2 * margin + 4, margin=margin, batch_size=3
    )
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    # default blending (margin overlap // 8) still gives a smooth, close result
    rough = predict_volume(net, volume, tile=24, overlap=8)
    assert np.abs(rough - whole).mean() < 0.1 * np.abs(whole).mean()


def test_bfloat16_prediction_on_the_cpu_stays_close_to_float32(monkeypatch):
    from spIsoNet.engine import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    net = randomise(UNet3D(UNetConfig(width=4, depth=1, n_conv=1)), 2, 0.2)
    volume = smooth_volume(24, 5)
    full = predict_volume(net, volume, tile=16, overlap=8)
    mixed = predict_volume(net, volume, tile=16, overlap=8, mixed_precision=True)
    assert mixed.dtype == np.float32
    assert not np.array_equal(mixed, full)  # bfloat16 really ran
    # the residual input passes in float32; only the network's correction is rounded
    assert np.abs(mixed - full).max() < 2e-2 * np.abs(full).max()
