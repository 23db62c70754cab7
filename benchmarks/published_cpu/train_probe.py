"""Time the published spIsoNet's own training loop (noise2noise, one process) on the CPU.

Run by ``benchmarks/bench_train.py --published`` with the published checkout's Python and
``PYTHONPATH=<this folder>:<published checkout>`` (so the CPU shim, ``sitecustomize.py`` here, is
active and ``spIsoNet`` is the *published* package)::

    python -m train_probe '{"width": 16, "cube": 32, "batch": 4, "steps": 4, "warmup": 1}'

What is timed: the published ``spIsoNet.models.network_n2n.ddp_train`` (the function its
``reconstruct`` runs in the process it spawns per GPU) called directly as rank 0 of a world of
one, on ``batch · (warmup + steps)`` random cubes written as MRC files the way its
``map_refine_n2n`` writes them, for one epoch, with α, β, learning rate 3e-4, no gradient
accumulation and no mixed precision; the network is the published ``Unet(filter_base=width,
unet_depth=3, add_last=True)`` (``reconstruct`` itself always uses width 64). A global
optimizer-step hook stamps the end of every step; samples/s is ``batch · steps`` over the time
from the end of the last warm-up step to the end of the last step, i.e. the steady state of the
loop itself
(its DataLoader with 4 workers reading the cubes, three U-Net forward passes and the backward
pass per batch, AdamW), without process start-up, import, data preparation and the first
``warmup`` steps. Prints one line ``RESULT {json}``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time


def probe(
    width: int,
    cube: int,
    batch: int,
    steps: int,
    warmup: int = 1,
    alpha: float = 1.0,
    beta: float = 0.5,
    seed: int = 0,
) -> dict:
    """Run the published training loop and return its step timings.

    Parameters
    ----------
    width
        ``filter_base`` of the published U-Net (16, 32 or 64).
    cube
        Cube edge in voxels.
    batch
        Cubes per optimizer step.
    steps, warmup
        Timed steps, and steps run before timing starts (at least 1: the first step includes
        the start of the DataLoader workers).
    alpha, beta
        Published loss weights.
    seed
        Seed of the random cubes, weights and rotations.

    Returns
    -------
    dict
        ``samples_per_s``, ``s_per_step``, ``steps`` (timed), ``threads`` (torch intra-op threads)
        and ``peak_mb`` (max RSS of this process and of its finished children, MiB).
    """
    import random

    import mrcfile
    import numpy as np
    import torch
    from spIsoNet.models.network_n2n import ddp_train, find_unused_port
    from spIsoNet.models.unet import Unet
    from torch.optim.optimizer import register_optimizer_step_post_hook

    random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_cubes = batch * (warmup + steps)
    stamps: list[float] = []
    register_optimizer_step_post_hook(lambda *args: stamps.append(time.perf_counter()))
    with tempfile.TemporaryDirectory(prefix="published_probe_") as tmp:
        folders = [os.path.join(tmp, "half1_data"), os.path.join(tmp, "half2_data")]
        base = rng.standard_normal((n_cubes, cube, cube, cube)).astype(np.float32)
        for k, folder in enumerate(folders):
            os.makedirs(folder)
            for j, data in enumerate(base + 0.1 * k):
                with mrcfile.new(f"{folder}/subvolume_{j:0>6d}.mrc", overwrite=True) as mrc:
                    mrc.set_data(data)
        fsc3d = rng.random((cube,) * 3).astype(np.float32)
        model = Unet(filter_base=width, unet_depth=3, add_last=True)
        ddp_train(
            0,
            1,
            str(find_unused_port()),
            model,
            alpha,
            beta,
            folders,
            batch,
            1,
            1,
            10**6,
            3e-4,
            False,
            os.path.join(tmp, "probe.pt"),
            fsc3d,
        )
    timed = len(stamps) - warmup
    if warmup < 1 or timed < 1:
        raise RuntimeError(f"{len(stamps)} optimizer steps ran; need warmup >= 1 and steps >= 1")
    seconds = stamps[-1] - stamps[warmup - 1]
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "samples_per_s": batch * timed / seconds,
        "s_per_step": seconds / timed,
        "steps": timed,
        "threads": torch.get_num_threads(),
        "peak_mb": peak / 1024,
    }


if __name__ == "__main__":
    print("RESULT " + json.dumps(probe(**json.loads(sys.argv[1]))), flush=True)
