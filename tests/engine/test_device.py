"""Device and thread choice: GPUs that are not there, threads from --ncpus/OMP/affinity."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from spIsoNet.engine import device
from spIsoNet.engine.device import cpu_threads, plan_devices
from spIsoNet.errors import InputError

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")


@pytest.fixture
def three_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)


def test_threads_never_exceed_the_cores_of_the_affinity_mask(three_cores):
    assert cpu_threads(None, {}) == 3  # the affinity mask, not os.cpu_count()
    assert cpu_threads(2, {}) == 2
    assert cpu_threads(16, {}) == 3
    assert cpu_threads(None, {"OMP_NUM_THREADS": "2"}) == 2
    assert cpu_threads(None, {"OMP_NUM_THREADS": "64"}) == 3
    assert cpu_threads(None, {"OMP_NUM_THREADS": "2,1"}) == 2  # nested OpenMP levels
    assert cpu_threads(None, {"OMP_NUM_THREADS": "x"}) == 3
    assert cpu_threads(1, {"OMP_NUM_THREADS": "3"}) == 1  # --ncpus wins


def test_the_device_plan_uses_and_logs_the_thread_policy(three_cores, caplog):
    with caplog.at_level(logging.INFO, logger="spIsoNet"):
        plan = plan_devices("cpu", None, 8, environ={})
    assert plan.threads == 3
    assert "CPU threads: 3 (--ncpus 8, capped to the 3 available)" in caplog.text
    assert plan_devices("cpu", None, None, cpu_processes=2, environ={}).threads == 1
    assert plan_devices("cpu", None, None, environ={"OMP_NUM_THREADS": "2"}).threads == 2


@no_gpu
def test_a_requested_gpu_that_is_not_there_is_never_silent(caplog):
    with caplog.at_level(logging.WARNING, logger="spIsoNet"):
        plan = plan_devices("auto", "0", 1)
    assert plan.kind == "cpu"
    assert "--gpuID 0 ignored: no CUDA GPU is available; running on the CPU" in caplog.text
    with pytest.raises(InputError, match="--device cuda: no CUDA GPU"):
        plan_devices("cuda", "0", 1)


def test_device_module_imports_without_torch():
    import subprocess
    import sys

    code = (
        "import sys; from spIsoNet.engine.device import cpu_threads, launcher_env; "
        "cpu_threads(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert device.launcher_env({}) is None


def test_autocast_dtype_uses_bfloat16_only_where_the_cpu_computes_it(monkeypatch, caplog):
    assert device.autocast_dtype("cpu", False) is None
    assert device.autocast_dtype("cuda", False) is None
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert device.autocast_dtype("cpu", True) is torch.bfloat16
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="spIsoNet"):
        assert device.autocast_dtype("cpu", True) is None
    assert "no native bfloat16" in caplog.text
