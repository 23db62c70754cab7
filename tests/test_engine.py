"""Tests of the correction engine (spIsoNet.engine): small CPU sizes, exact/analytic checks."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from spIsoNet.engine import EngineSettings, correct_maps
from spIsoNet.engine.checkpoint import build_from_checkpoint, load_checkpoint, save_checkpoint
from spIsoNet.engine.data import CubeSource, make_step_plan, sample_cube_starts
from spIsoNet.engine.distributed import DistContext
from spIsoNet.engine.fourier_weight import apply_weight, cube_weight, weight_to_rfft
from spIsoNet.engine.losses import correction_loss
from spIsoNet.engine.predict import predict_volume
from spIsoNet.engine.rotations import N_ROTATIONS, rotate, rotate_batch, rotation_matrices
from spIsoNet.engine.train import TrainOptions, micro_batch_size, train_model
from spIsoNet.engine.unet import UNet3D, UNetConfig, receptive_radius
from spIsoNet.errors import InputError

TINY = UNetConfig(width=4, depth=1, n_conv=1)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids oversubscription overhead on a shared 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def smooth_volume(n: int, seed: int, sigma: float = 1.5) -> np.ndarray:
    """Random smooth float32 volume (Gaussian-filtered noise), z-scored."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    v = ndimage.gaussian_filter(rng.standard_normal((n, n, n)), sigma)
    return ((v - v.mean()) / v.std()).astype(np.float32)


def randomise(net: torch.nn.Module, seed: int, scale: float = 0.3) -> torch.nn.Module:
    """Give every parameter (including the zero-initialised head) random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return net


# --------------------------------------------------------------------------------------------
# rotations


def test_24_rotations_distinct_proper_and_closed():
    mats = rotation_matrices()
    assert mats.shape == (N_ROTATIONS, 3, 3) == (24, 3, 3)
    assert len({m.tobytes() for m in mats}) == 24
    assert np.all(np.round(np.linalg.det(mats)) == 1)
    assert any((m == np.eye(3, dtype=int)).all() for m in mats)
    # closure, checked on an asymmetric volume (not just on the matrices)
    vol = torch.arange(4**3, dtype=torch.float32).reshape(4, 4, 4)
    rotated = [rotate(vol, r) for r in range(24)]
    for a in range(24):
        for b in range(24):
            composed = rotate(rotate(vol, a), b)
            assert any(torch.equal(composed, rotated[c]) for c in range(24)), (a, b)


def test_rotate_batch_equals_per_sample_rotation():
    gen = torch.Generator().manual_seed(0)
    batch = torch.randn(6, 1, 5, 5, 5, generator=gen)
    ids = [3, 0, 17, 3, 23, 9]
    out = rotate_batch(batch, ids)
    for i, r in enumerate(ids):
        assert torch.equal(out[i], rotate(batch[i], r))


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


# --------------------------------------------------------------------------------------------
# training


def _source(n=24, cube=8, n_cubes=16, seed=0, two=True):
    maps = [torch.from_numpy(smooth_volume(n, seed))]
    if two:
        maps.append(torch.from_numpy(smooth_volume(n, seed + 1)))
    corners = sample_cube_starts(n, cube, n_cubes, None, np.random.default_rng(seed))
    return CubeSource(maps, corners, cube)


def _weight(cube=8):
    k = np.arange(cube) - cube // 2
    m = (np.abs(k)[:, None, None] <= 2) * np.ones((1, cube, cube))  # a slab: missing along z
    return torch.from_numpy(weight_to_rfft(m.astype(np.float32)))


def test_one_optimizer_step_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    net = UNet3D(UNetConfig(width=4, depth=1, n_conv=1))
    source = _source()
    x1, x2 = source.batch(np.arange(4), np.zeros(4, bool))
    weight = _weight()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4)
    for _ in range(2):  # the head starts at zero: the first step only moves the head
        before, _ = correction_loss(net, x1, x2, weight, [1, 2, 3, 4], 1.0, 0.5)
        opt.zero_grad()
        before.backward()
        opt.step()
        after, _ = correction_loss(net, x1, x2, weight, [1, 2, 3, 4], 1.0, 0.5)
        assert after.item() < before.item()


def _params(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def _train_once(acc, batch, world=1, rank=0, norm="group", epochs=1, steps=2, opt="sgd"):
    torch.manual_seed(0)
    net = randomise(UNet3D(UNetConfig(width=4, depth=1, n_conv=1, norm=norm)), 5, 0.2)
    optimizer = (
        torch.optim.SGD(net.parameters(), lr=1.0)
        if opt == "sgd"
        else torch.optim.AdamW(net.parameters(), lr=1e-3)
    )
    options = TrainOptions(
        epochs=epochs,
        batch_size=batch,
        acc_batches=acc,
        steps_per_epoch=steps,
        seed=3,
        show_progress=False,
    )
    ctx = DistContext(device=torch.device("cpu"), rank=rank, world_size=world)
    history = train_model(net, _source(), _weight(), options, ctx, optimizer=optimizer)
    return net, history


def test_gradient_accumulation_equals_the_large_batch():
    # SGD with lr 1: the parameter change is the gradient itself, so this compares gradients
    big, hist_big = _train_once(acc=1, batch=4)
    for acc in (2, 4):
        small, hist_small = _train_once(acc=acc, batch=4)
        torch.testing.assert_close(_params(small), _params(big), rtol=1e-5, atol=1e-6)
        assert hist_small == pytest.approx(hist_big, rel=1e-6)


def test_micro_batch_validation():
    assert micro_batch_size(8, 2, 2) == 2
    with pytest.raises(InputError, match="smaller than"):
        micro_batch_size(2, 2, 2)
    with pytest.raises(InputError, match="multiple"):
        micro_batch_size(6, 2, 2)


def test_step_plan_depends_only_on_seed_and_epoch():
    a = make_step_plan(10, 4, 5, seed=1, epoch=2)
    b = make_step_plan(10, 4, 5, seed=1, epoch=2)
    c = make_step_plan(10, 4, 5, seed=1, epoch=3)
    assert np.array_equal(a.cubes, b.cubes) and np.array_equal(a.rotations, b.rotations)
    assert not np.array_equal(a.cubes, c.cubes)
    assert a.rotations.max() < 24 and a.swap.any() and not a.swap.all()


def _ddp_worker(rank, world, store, out_dir):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", store=dist.FileStore(store, world), rank=rank, world_size=world)
    try:
        net, history = _train_once(acc=1, batch=4, world=world, rank=rank, opt="adamw", epochs=2)
        torch.save(
            {"params": _params(net), "history": history}, os.path.join(out_dir, f"{rank}.pt")
        )
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one_process_with_the_combined_batch():
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_ddp_worker, args=(2, os.path.join(tmp, "store"), tmp), nprocs=2, join=True)
        r0 = torch.load(os.path.join(tmp, "0.pt"), weights_only=True)
        r1 = torch.load(os.path.join(tmp, "1.pt"), weights_only=True)
    assert torch.equal(r0["params"], r1["params"])  # DDP keeps replicas identical
    single, history = _train_once(acc=2, batch=4, opt="adamw", epochs=2)
    torch.testing.assert_close(r0["params"], _params(single), rtol=1e-4, atol=1e-5)
    assert r0["history"] == pytest.approx(history, rel=1e-5)


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


# --------------------------------------------------------------------------------------------
# correct_maps end to end (tiny)


def _case(n=32, seed=0):
    truth = smooth_volume(n, seed, sigma=2.0)
    rng = np.random.default_rng(seed + 10)
    h1 = truth + 0.5 * rng.standard_normal(truth.shape).astype(np.float32)
    h2 = truth + 0.5 * rng.standard_normal(truth.shape).astype(np.float32)
    k = np.arange(n) - n // 2
    fsc = np.exp(-(k[:, None, None] ** 2) / 20.0) * np.ones((1, n, n))  # weak along z
    return h1, h2, fsc.astype(np.float32)


def _settings(**kw):
    base = dict(
        epochs=1,
        n_subvolume=8,
        cube_size=16,
        predict_crop_size=16,
        batch_size=4,
        acc_batches=1,
        net_width=4,
        net_depth=1,
        n_conv=1,
        seed=0,
        device="cpu",
        show_progress=False,
        ncpus=1,
    )
    base.update(kw)
    return EngineSettings(**base)


def test_independent_halves_never_see_each_other(tmp_path):
    h1, h2, fsc = _case()
    s = _settings(independent=True)
    a = correct_maps(h1, h2, 2.0, fsc3d_volume=fsc, limit_res=5.0, settings=s, output_dir=tmp_path)
    other = smooth_volume(32, 99) * 3.0 + 1.0
    b = correct_maps(
        other, h2, 2.0, fsc3d_volume=fsc, limit_res=5.0, settings=s, output_dir=tmp_path
    )
    assert len(a.corrected) == 2 and len(a.model_paths) == 2
    assert np.array_equal(a.filtered[1], b.filtered[1])
    assert np.array_equal(a.corrected[1], b.corrected[1])
    assert not np.allclose(a.filtered[0], b.filtered[0])


def test_noise2noise_run_outputs_and_predict_only_round_trip(tmp_path):
    h1, h2, fsc = _case()
    s = _settings(epochs=2, acc_batches=2)
    r = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=s,
        output_dir=tmp_path,
        model_name="pair",
    )
    assert len(r.loss_history) == 2 and np.all(np.isfinite(r.loss_history))
    assert r.model_path == tmp_path / "pair.pt" and (tmp_path / "loss.png").is_file()
    assert set(r.timings) >= {"prepare", "train", "predict", "recombine"}
    for corrected, half in zip(r.corrected, (h1, h2)):
        assert corrected.shape == half.shape and corrected.dtype == np.float32
        # back on the input's scale
        assert abs(corrected.std() / half.std() - 1) < 0.5
    # information beyond limit_res comes from the input half: the high band is unchanged
    from spIsoNet.fourier import frequency_radius, rfft3

    radius = frequency_radius(32)
    high = radius > 32 * 2.0 / 5.0 + 3
    np.testing.assert_allclose(
        rfft3(r.corrected[0])[high], rfft3(h1)[high], rtol=1e-3, atol=1e-3 * np.abs(rfft3(h1)).max()
    )
    # --epochs 0 --pretrained_model: prediction only, identical to the training run's output
    p = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=_settings(epochs=0),
        output_dir=tmp_path / "predict",
        pretrained_model=r.model_path,
    )
    assert np.array_equal(p.filtered[0], r.filtered[0])
    assert p.loss_history == r.loss_history


def test_single_map_mode_trains(tmp_path):
    h1, _, fsc = _case()
    r = correct_maps(
        h1, None, 2.0, fsc3d_volume=fsc, limit_res=5.0, settings=_settings(), output_dir=tmp_path
    )
    assert len(r.corrected) == 1 and len(r.loss_history) == 1
    assert not np.allclose(r.filtered[0], r.filtered[0].mean())


def test_resume_continues_exactly(tmp_path):
    h1, h2, fsc = _case()
    full = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=_settings(epochs=2),
        output_dir=tmp_path / "full",
    )
    correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=_settings(epochs=1),
        output_dir=tmp_path / "part",
    )
    resumed = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=_settings(epochs=2, resume=True),
        output_dir=tmp_path / "part",
    )
    assert resumed.loss_history == pytest.approx(full.loss_history, rel=1e-6)
    np.testing.assert_allclose(resumed.filtered[0], full.filtered[0], atol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"h2": np.zeros((30, 30, 30), np.float32)}, "half-map 2: shape"),
        ({"fsc": np.ones((16, 16, 16), np.float32)}, "FSC3D"),
        ({"settings": {"cube_size": 12, "net_depth": 3}}, "multiple of 2\\^net_depth"),
        ({"settings": {"batch_size": 2, "acc_batches": 4}}, "smaller than processes"),
        ({"settings": {"cube_size": 64}}, "larger than the map"),
        ({"settings": {"epochs": 0}}, "pretrained"),
    ],
)
def test_bad_inputs_fail_before_training(tmp_path, change, message):
    h1, h2, fsc = _case()
    h2 = change.get("h2", h2)
    fsc = change.get("fsc", fsc)
    s = _settings(**change.get("settings", {}))
    with pytest.raises(InputError, match=message):
        correct_maps(h1, h2, 2.0, fsc3d_volume=fsc, limit_res=5.0, settings=s, output_dir=tmp_path)
    assert not list(tmp_path.glob("*.pt"))


def test_cli_reconstruct_writes_outputs_and_rejects_bad_fsc3d(tmp_path):
    from spIsoNet.cli.main import main
    from spIsoNet.io import write_map

    h1, h2, fsc = _case()
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


def test_pipeline_spawned_processes_match_single_process(tmp_path):
    """The multi-process path of correct_maps (one process per GPU; gloo on CPU here)."""
    h1, h2, fsc = _case()
    single = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=_settings(epochs=2, acc_batches=2),
        output_dir=tmp_path / "one",
    )
    spawned = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=_settings(epochs=2, acc_batches=1, cpu_processes=2),
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

    h1, h2, fsc = _case()
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
    launcher = Path(__file__).resolve().parents[1] / "bin" / "spisonet.py"
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


def test_reference_low_frequencies_are_trusted(tmp_path):
    from spIsoNet.engine.fourier_weight import reference_sphere

    sphere = reference_sphere(16, 2.0, 8.0)  # 1/8 Å⁻¹ = 16·2/8 = 4 cube Fourier pixels
    assert sphere[8, 8, 8 + 3] == 1 and sphere[8, 8, 8 + 4] == 0 and sphere[8 + 3, 8, 8] == 1
    h1, h2, fsc = _case()
    reference = smooth_volume(32, 42, sigma=3.0)
    r = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=_settings(),
        output_dir=tmp_path,
        reference=reference,
        ref_resolution=8.0,
    )
    # the network saw the reference's low frequencies: its output correlates with it there
    from spIsoNet.fourier import lowpass

    low_out = lowpass(r.filtered[0], 12.0, 2.0).ravel()
    low_ref = lowpass(reference, 12.0, 2.0).ravel()
    low_half = lowpass(h1, 12.0, 2.0).ravel()
    assert np.corrcoef(low_out, low_ref)[0, 1] > np.corrcoef(low_out, low_half)[0, 1]
