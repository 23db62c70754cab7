"""The training objective: FSC3D-weighted consistency + rotation equivariance (+ noise2noise terms).

Per pair of co-located cubes ``x1, x2`` (``[b, 1, c, c, c]``), network ``f``, Fourier weight ``M``
(``P_M(v) = Re IFFT(M · FFT(v))``) and a random cube rotation ``R`` per sample::

    y1 = f(x1), y2 = f(x2)
    consistency     L_c1 = ‖P_M(y1) − x1‖₁           L_c2 = ‖P_M(y1) − x2‖₁
    equivariance    z = f(P_M(R y1))
                    L_e1 = ‖z − R y1‖₁               L_e2 = ‖z − R y2‖₁
    total           L = L_c1 + α·L_e1 + β·(L_c2 + α·L_e2)

``‖·‖₁`` is the mean absolute difference over voxels and samples. With one map (``x2 = None``) or
``β = 0`` the cross terms vanish and ``f(x2)`` is not evaluated; with ``α = 0`` the second pass is
skipped. Gradients flow through every term, as in the published method (no stop-gradient).
"""

from __future__ import annotations

import torch
from torch import nn

from spIsoNet.engine.fourier_weight import apply_weight
from spIsoNet.engine.rotations import rotate_batch


def correction_loss(
    model: nn.Module,
    x1: torch.Tensor,
    x2: torch.Tensor | None,
    weight_rfft: torch.Tensor,
    rotations: torch.Tensor,
    alpha: float,
    beta: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its detached parts for one (micro-)batch.

    Parameters
    ----------
    model
        The network ``f``.
    x1, x2
        Cubes ``[b, 1, c, c, c]`` (``x2`` may be None: single-map objective).
    weight_rfft
        M in rfft layout ``[c, c, c//2+1]`` (see :mod:`spIsoNet.engine.fourier_weight`).
    rotations
        ``b`` rotation numbers in ``0..23`` (CPU tensor).
    alpha, beta
        Weights of the equivariance and cross-half terms.

    Returns
    -------
    (loss, parts)
        Scalar loss (mean over the batch) and a dict of the detached terms ``c1, e1, c2, e2``.
    """
    cross = x2 is not None and beta > 0
    b = x1.shape[0]
    if cross:
        y = model(torch.cat([x1, x2], dim=0))
        y1, y2 = y[:b], y[b:]
    else:
        y1, y2 = model(x1), None
    y1 = y1.float()
    projected = apply_weight(y1, weight_rfft)
    parts: dict[str, torch.Tensor] = {}
    c1 = (projected - x1).abs().mean()
    total = c1
    parts["c1"] = c1.detach()
    if cross:
        c2 = (projected - x2).abs().mean()
        total = total + beta * c2
        parts["c2"] = c2.detach()
    if alpha > 0:
        rotated1 = rotate_batch(y1, rotations)
        z = model(apply_weight(rotated1, weight_rfft)).float()
        e1 = (z - rotated1).abs().mean()
        total = total + alpha * e1
        parts["e1"] = e1.detach()
        if cross:
            e2 = (z - rotate_batch(y2.float(), rotations)).abs().mean()
            total = total + alpha * beta * e2
            parts["e2"] = e2.detach()
    return total, parts


class LossModule(nn.Module):
    """Wraps network + objective so that DDP sees one forward per micro-batch.

    ``forward(x1, x2, rotations) -> (loss, parts)``; ``self.net`` is the U-Net.
    """

    def __init__(self, net: nn.Module, weight_rfft: torch.Tensor, alpha: float, beta: float):
        super().__init__()
        self.net = net
        self.register_buffer("weight_rfft", weight_rfft, persistent=False)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def forward(self, x1, x2, rotations):
        """Loss of a micro-batch (see :func:`correction_loss`)."""
        return correction_loss(self.net, x1, x2, self.weight_rfft, rotations, self.alpha, self.beta)
