"""The correction losses on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spIsoNet.engine.fourier_weight import weight_to_rfft
from spIsoNet.engine.losses import correction_loss

# --------------------------------------------------------------------------------------------
# losses


class _Scale(torch.nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = torch.nn.Parameter(torch.tensor(float(factor)))

    def forward(self, x):
        return x * self.factor


def test_loss_values_on_hand_made_inputs():
    c = 4
    ones = torch.from_numpy(weight_to_rfft(np.ones((c, c, c), np.float32)))
    x1 = torch.full((2, 1, c, c, c), 1.0)
    x2 = torch.full((2, 1, c, c, c), 3.0)
    rot = [5, 11]
    # identity network, M = 1: L = β(|x1 - x2| + α|R x1 - R x2|) = 0.5 (2 + 1·2)
    loss, parts = correction_loss(_Scale(1.0), x1, x2, ones, rot, alpha=1.0, beta=0.5)
    assert parts["c1"] == 0 and parts["e1"] == 0
    assert loss.item() == pytest.approx(2.0)
    # f(x) = 2x, M = 1: c1 = |2-1| = 1, c2 = |2-3| = 1, e1 = |4-2| = 2, e2 = |4-6| = 2
    loss, parts = correction_loss(_Scale(2.0), x1, x2, ones, rot, alpha=0.5, beta=0.25)
    assert [parts[k].item() for k in ("c1", "c2", "e1", "e2")] == pytest.approx([1, 1, 2, 2])
    assert loss.item() == pytest.approx(1 + 0.5 * 2 + 0.25 * (1 + 0.5 * 2))
    # M keeps only the mean: P_M(y1) = mean(2 x) = 2 · mean; x1 = ramp with known mean
    dc = np.zeros((c, c, c), np.float32)
    dc[c // 2, c // 2, c // 2] = 1
    ramp = torch.arange(c**3, dtype=torch.float32).reshape(1, 1, c, c, c)
    loss, parts = correction_loss(
        _Scale(2.0), ramp, None, torch.from_numpy(weight_to_rfft(dc)), [0], alpha=0.0, beta=0.5
    )
    mean = ramp.mean()
    assert parts["c1"].item() == pytest.approx((2 * mean - ramp).abs().mean().item(), rel=1e-6)
    assert set(parts) == {"c1"}  # α = 0 and one map: no equivariance pass, no cross terms
