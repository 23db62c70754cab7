"""The training loop: one step, exact gradient accumulation, batch split, DDP."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import torch

from spIsoNet.engine.data import CubeSource, sample_cube_starts
from spIsoNet.engine.distributed import DistContext
from spIsoNet.engine.fourier_weight import weight_to_rfft
from spIsoNet.engine.losses import correction_loss
from spIsoNet.engine.train import TrainOptions, learning_rate_at, micro_batch_size, train_model
from spIsoNet.engine.unet import UNet3D, UNetConfig
from spIsoNet.errors import InputError

from .helpers import randomise, smooth_volume

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


def test_cosine_schedule_warms_up_peaks_and_decays_to_a_tenth():
    total, peak = 200, 1e-3
    rates = np.array([learning_rate_at(i, total, peak, "cosine") for i in range(total)])
    warmup = 10  # 5 % of 200
    np.testing.assert_allclose(rates[:warmup], peak * np.arange(1, warmup + 1) / warmup)
    assert rates.max() == pytest.approx(peak)
    assert np.all(np.diff(rates[warmup - 1 :]) <= 1e-15)  # non-increasing after the warm-up
    assert rates[-1] == pytest.approx(0.1 * peak)
    # the middle of the decay is the mean of peak and floor (cosine at half way)
    mid = warmup + (total - 1 - warmup) / 2
    assert learning_rate_at(int(mid), total, peak, "cosine") == pytest.approx(0.55 * peak, rel=0.02)
    assert all(learning_rate_at(i, total, peak, "constant") == peak for i in (0, 50, 199))


def test_cosine_schedule_sets_the_optimizer_rate_per_step():
    net = UNet3D(UNetConfig(width=4, depth=1, n_conv=1))
    optimizer = torch.optim.AdamW(net.parameters(), lr=5.0)  # overwritten by the schedule
    options = TrainOptions(
        epochs=2,
        batch_size=4,
        acc_batches=1,
        steps_per_epoch=3,
        learning_rate=1e-3,
        lr_schedule="cosine",
        seed=0,
        show_progress=False,
    )
    ctx = DistContext(device=torch.device("cpu"), rank=0, world_size=1)
    train_model(net, _source(), _weight(), options, ctx, optimizer=optimizer)
    # the last of the 6 planned steps ran at the floor
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_group_norm_cpu_bfloat16_path_equals_torch_group_norm():
    from spIsoNet.engine.unet import _GroupNorm

    torch.manual_seed(0)
    ours, reference = _GroupNorm(4, 16), torch.nn.GroupNorm(4, 16)
    with torch.no_grad():
        ours.weight.normal_()
        ours.bias.normal_()
    reference.load_state_dict(ours.state_dict())  # same parameters, checkpoint-compatible
    x = (3 * torch.randn(2, 16, 6, 6, 6) + 1).to(memory_format=torch.channels_last_3d)
    x16 = x.bfloat16().requires_grad_()
    x32 = x16.detach().float().requires_grad_()
    y16, y32 = ours(x16), reference(x32)
    assert y16.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(y16.float(), y32, rtol=0, atol=2e-2)  # bfloat16 output rounding
    g = torch.randn_like(y32)
    y16.backward(g.bfloat16())
    y32.backward(g)
    torch.testing.assert_close(x16.grad.float(), x32.grad, rtol=0, atol=3e-2)
    torch.testing.assert_close(ours(x32), y32)  # float32 input: torch's own path


def test_bfloat16_autocast_training_on_the_cpu_tracks_float32(monkeypatch):
    # Forced on (emulated where the CPU lacks native bfloat16): same losses to bfloat16 accuracy.
    from spIsoNet.engine import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)

    def run(mixed):
        torch.manual_seed(0)
        net = randomise(UNet3D(UNetConfig(width=4, depth=1, n_conv=1)), 5, 0.2)
        options = TrainOptions(
            epochs=2, batch_size=4, acc_batches=1, steps_per_epoch=2, seed=3,
            show_progress=False, mixed_precision=mixed,
        )  # fmt: skip
        ctx = DistContext(device=torch.device("cpu"))
        return train_model(net, _source(), _weight(), options, ctx), net

    (h32, net32), (h16, net16) = run(False), run(True)
    assert h16 == pytest.approx(h32, rel=2e-2)
    assert h16 != h32  # bfloat16 really ran
    torch.testing.assert_close(_params(net16), _params(net32), rtol=0, atol=5e-3)
