"""The Fourier weight M: projection and resampling of the FSC3D to the cube grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spIsoNet.engine.fourier_weight import apply_weight, cube_weight, weight_to_rfft

# --------------------------------------------------------------------------------------------
# Fourier weight


def test_projection_with_unit_weight_is_identity():
    v = torch.randn(3, 1, 12, 12, 12, generator=torch.Generator().manual_seed(1))
    ones = torch.from_numpy(weight_to_rfft(np.ones((12, 12, 12), np.float32)))
    assert torch.allclose(apply_weight(v, ones), v, atol=1e-5)


@pytest.mark.parametrize("c", [8, 9])
def test_projection_equals_real_part_of_full_fft_filter(c):
    rng = np.random.default_rng(2)
    weight = rng.random((c, c, c)).astype(np.float32)  # not Friedel-symmetric on purpose
    v = rng.standard_normal((2, 1, c, c, c)).astype(np.float32)
    reference = np.real(
        np.fft.ifftn(
            np.fft.ifftshift(weight) * np.fft.fftn(v, axes=(-3, -2, -1)), axes=(-3, -2, -1)
        )
    )
    got = apply_weight(torch.from_numpy(v), torch.from_numpy(weight_to_rfft(weight))).numpy()
    np.testing.assert_allclose(got, reference, atol=1e-5)


def test_dc_only_weight_gives_the_mean():
    c = 8
    weight = np.zeros((c, c, c), np.float32)
    weight[c // 2, c // 2, c // 2] = 1.0
    v = torch.randn(2, 1, c, c, c, generator=torch.Generator().manual_seed(3))
    out = apply_weight(v, torch.from_numpy(weight_to_rfft(weight)))
    expected = v.mean(dim=(-3, -2, -1), keepdim=True).expand_as(v)
    assert torch.allclose(out, expected, atol=1e-6)


def test_cube_weight_keeps_physical_frequency_and_centre():
    n, c = 48, 16
    k = np.arange(n) - n // 2
    # linear in the physical frequency along z and y: trilinear sampling and the symmetric box
    # prefilter reproduce it exactly away from the edges
    fsc = 0.5 + 0.4 * (k[:, None, None] / (n / 2)) - 0.1 * (k[None, :, None] / (n / 2))
    fsc = np.broadcast_to(fsc, (n, n, n)).astype(np.float64)
    m = cube_weight(fsc, c)
    q = np.arange(c) - c // 2
    expected = 0.5 + 0.4 * (q[:, None, None] / (c / 2)) - 0.1 * (q[None, :, None] / (c / 2))
    expected = np.broadcast_to(expected, (c, c, c)).copy()
    expected[c // 2, c // 2, c // 2] = 1.0  # DC: by definition fully determined
    assert m[c // 2, c // 2, c // 2] == 1.0
    inner = (slice(2, -2),) * 3
    np.testing.assert_allclose(m[inner], expected[inner], atol=1e-5)
    # negative correlation clipped to 0
    assert cube_weight(-np.ones((n, n, n)), c).sum() == 1.0
