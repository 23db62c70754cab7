"""The reconstruction against an independent, plain-numpy transcription of RELION's algorithm.

RELION's own output (tests/test_relion.py) covers padding 2 and N = 64. Here a second, simple
implementation (scatter by modulo, scipy's Bessel function, numpy FFTs, explicit fftshift/crop)
is first checked against RELION's output, then compared with ours where no RELION vector
exists: padding 1 and 1.5 (odd file grid), current size < N, zero tau2 shells, T = 4, no tau2.
"""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
from scipy.special import iv

from spIsoNet.relion.reconstruction import GridGeometry, reconstruct, relion_round

from ._vectors import VECTORS, call_arrays


def reference(real, imag, weight, n, cs, pf, tau2, fudge, iterations=10):
    """Literal transcription of relion-interface.md §4.2, independent of the module's helpers."""
    pfile = weight.shape[0]
    rmax = n // 2 if cs > n else cs // 2
    big_r = int(np.floor(pf * rmax + 0.5))
    p = 2 * big_r + 3
    pe = pfile + pfile % 2

    def signed(m):
        i = np.arange(m)
        return np.where(i <= m // 2, i, i - m)

    kz = signed(pfile)
    z, y, x = np.meshgrid(kz, kz, np.arange(pfile // 2 + 1), indexing="ij")
    r2 = z**2 + y**2 + x**2
    sel = r2 < big_r**2
    zi, yi, xi = z[sel] % p, y[sel] % p, x[sel]
    w = weight[sel].astype(np.float64)
    fw_values = w.copy()
    if tau2 is not None:
        t = tau2[np.floor(np.sqrt(r2[sel]) / pf + 0.5).astype(int)]
        for j in range(w.size):  # per voxel, as the specification reads
            if t[j] > 0:
                fw_values[j] = w[j] + 1.0 / (pf**3 * fudge * t[j])
            elif w[j] > 1e-20:
                fw_values[j] = w[j] + 1.0 / (0.001 * w[j])
    shape = (p, p, p // 2 + 1)
    fw = np.zeros(shape)
    inside = np.zeros(shape, bool)
    fw[zi, yi, xi] = fw_values
    inside[zi, yi, xi] = True

    alpha, a = 15.0, 3.8
    grid_w = np.arange(10000) * (0.5 / 10000)
    s = np.sqrt(alpha**2 - (2 * np.pi * a * grid_w) ** 2)
    table = iv(1.5, s) / s**1.5
    q = np.where(np.arange(p) < p // 2, np.arange(p), np.arange(p) - p)
    rval = np.sqrt(q[:, None, None] ** 2 + q[None, :, None] ** 2 + q[None, None, :] ** 2) / (n * pf)
    idx = np.floor(rval / (0.5 / 10000)).astype(int)
    g = np.where(idx < 10000, table[np.minimum(idx, 9999)], 0.0) / table[0]
    wn = inside.astype(np.float64)
    for _ in range(iterations):
        conv = np.fft.rfftn(np.fft.irfftn(wn * fw, s=(p, p, p), axes=(0, 1, 2)) * g)
        wn = np.where(inside, wn / np.maximum(1e-6, np.abs(conv)), 0.0)

    spectrum = np.zeros((pe, pe, pe // 2 + 1), complex)
    spectrum[z[sel] % pe, y[sel] % pe, xi] = (real[sel] + 1j * imag[sel]) * wn[zi, yi, xi]
    v = (
        np.fft.fftshift(np.fft.irfftn(spectrum, s=(pe, pe, pe), axes=(0, 1, 2)))
        * pe**3
        / (pf**3 * n)
    )
    c0 = pe // 2 - n // 2
    v = v[c0 : c0 + n, c0 : c0 + n, c0 : c0 + n]

    c = np.arange(n) - n // 2
    r = np.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)
    rad = n / 2
    b = np.zeros_like(r)
    edge = (r >= rad) & (r <= rad + 3)
    b[edge] = 0.5 + 0.5 * np.cos(np.pi * (rad + 3 - r[edge]) / 3)
    b[r > rad + 3] = 1.0
    v = (1 - b) * v + b * (b * v).sum() / b.sum()
    sinc = np.sinc(r / (pf * n))
    return v / sinc**2


def _synthetic(n, cs, pf, seed=0):
    geom = GridGeometry.from_call(n, cs, pf)
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(geom.grid_file, 1.0 / geom.grid_file)
    kx = np.arange(geom.grid_file // 2 + 1)
    r2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + kx[None, None, :] ** 2
    weight = (1e5 / (1 + r2) * rng.uniform(0.5, 1.5, r2.shape)).astype(np.float32)
    real = (weight * rng.normal(0, 1e-2, r2.shape)).astype(np.float32)
    imag = (weight * rng.normal(0, 1e-2, r2.shape)).astype(np.float32)
    tau2 = 1e-4 / (1.0 + np.arange(n // 2 + 1) ** 2)
    tau2[3] = 0.0  # a zero shell: the 1/(0.001 W) branch
    return real, imag, weight, tau2


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_relion_round_is_half_away_from_zero():
    assert relion_round([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999]).tolist() == [1, 2, 3, -1, -3, 2]


@pytest.mark.skipif(not VECTORS.is_dir(), reason="relion-vectors not present")
def test_reference_transcription_matches_relion():
    call = "run_it001_half1_class001"
    ext, arrays = call_arrays(call)
    root = VECTORS / "calls" / call / f"{call}_external_reconstruct"
    with mrcfile.open(f"{root}.mrc.gz") as mrc:
        relion = np.array(mrc.data)
    ref = reference(*arrays, 64, ext.current_size, 2.0, ext.tau2, ext.tau2_fudge)
    assert _rel(ref, relion) < 1e-6


@pytest.mark.parametrize(
    "n, cs, pf, fudge, with_tau2",
    [
        (32, 32, 1.0, 1.0, True),  # --pad 1, full size
        (32, 18, 1.0, 4.0, True),  # --pad 1, current size < N, T = 4
        (30, 30, 1.5, 2.0, True),  # odd file grid (45), even inverse-FFT grid (46)
        (28, 14, 2.0, 1.0, False),  # no tau2 table (relion_reconstruct)
    ],
)
def test_matches_reference_transcription(n, cs, pf, fudge, with_tau2):
    real, imag, weight, tau2 = _synthetic(n, cs, pf)
    tau2 = tau2 if with_tau2 else None
    ours = reconstruct(
        real,
        imag,
        weight,
        ori_size=n,
        current_size=cs,
        padding_factor=pf,
        tau2=tau2,
        tau2_fudge=fudge,
    )
    ref = reference(real, imag, weight, n, cs, pf, tau2, fudge)
    assert ours.shape == (n, n, n) and ours.dtype == np.float32
    assert _rel(ours, ref) < 1e-5


def test_mixed_precision_stays_close():
    real, imag, weight, tau2 = _synthetic(32, 24, 2.0, seed=1)
    kw = dict(ori_size=32, current_size=24, padding_factor=2.0, tau2=tau2)
    full = reconstruct(real, imag, weight, **kw)
    mixed = reconstruct(real, imag, weight, double_iterations=2, **kw)
    assert _rel(mixed, full) < 1e-4


def test_bad_shapes_and_values_are_rejected():
    real, imag, weight, tau2 = _synthetic(16, 16, 2.0)
    with pytest.raises(ValueError, match="expected"):
        reconstruct(real[:, :, :-1], imag, weight, ori_size=16, current_size=16, padding_factor=2)
    weight[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        reconstruct(real, imag, weight, ori_size=16, current_size=16, padding_factor=2)
