"""Run control: progress lines, the time limit, stop requests and out-of-memory as one line."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from spIsoNet.engine import correct_maps, interrupt
from spIsoNet.engine.checkpoint import load_checkpoint
from spIsoNet.engine.distributed import DistContext
from spIsoNet.engine.train import TrainOptions, format_duration, train_model
from spIsoNet.engine.unet import UNet3D
from spIsoNet.errors import InputError

from .helpers import TINY, tiny_case, tiny_settings
from .test_train import _source, _weight


def _options(**kw):
    base = dict(epochs=3, batch_size=2, acc_batches=1, steps_per_epoch=4, show_progress=False)
    base.update(kw)
    return TrainOptions(**base)


def _train(options):
    torch.manual_seed(0)
    return train_model(
        UNet3D(TINY), _source(), _weight(), options, DistContext(device=torch.device("cpu"))
    )


def test_progress_lines_carry_step_loss_and_eta(caplog):
    with caplog.at_level(logging.INFO, logger="spIsoNet"):
        _train(_options(epochs=1, progress_interval=0.0, description="m"))
    lines = [r.getMessage() for r in caplog.records if "step" in r.getMessage()]
    assert lines[-1].startswith("m: 4 optimizer steps, 8 samples in ") and "samples/s" in lines[-1]
    lines = lines[:-1]
    assert len(lines) == 4
    assert lines[1].startswith("m: epoch 1/1 step 2/4 loss ")
    assert "s/step, ETA " in lines[1]
    assert format_duration(5) == "5 s" and format_duration(723) == "12 min 03 s"
    assert format_duration(7500) == "2 h 05 min"


def test_time_limit_stops_after_the_current_step(caplog):
    with caplog.at_level(logging.INFO, logger="spIsoNet"):
        history = _train(_options(time_limit=1e-9, description="m"))
    assert len(history) == 1 and np.isfinite(history[0])
    assert "time limit of 1e-09 s reached after step 1/4 of epoch 1" in caplog.text


def test_time_limit_in_a_run_still_predicts(tmp_path):
    h1, h2, fsc = tiny_case()
    r = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(epochs=5, time_limit=1e-6),
        output_dir=tmp_path,
    )
    assert len(r.loss_history) == 1 and len(r.corrected) == 2
    assert load_checkpoint(r.model_path)["epoch"] == 1


def test_a_stop_request_keeps_the_last_finished_epoch(tmp_path):
    h1, h2, fsc = tiny_case()
    seen = []

    def stop_after_first_epoch(histories):
        seen.append(dict(histories))
        interrupt.request()

    try:
        with pytest.raises(interrupt.Interrupted) as info:
            correct_maps(
                h1,
                h2,
                2.0,
                fsc3d_volume=fsc,
                limit_res=5.0,
                settings=tiny_settings(epochs=3),
                output_dir=tmp_path,
                loss_plot=stop_after_first_epoch,
            )
    finally:
        interrupt.clear()
    assert info.value.exit_code == 130 and len(seen) == 1
    assert load_checkpoint(tmp_path / "model.pt")["epoch"] == 1
    resumed = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(epochs=2, resume=True),
        output_dir=tmp_path,
        loss_plot=None,
    )
    assert len(resumed.loss_history) == 2
    assert resumed.loss_history[0] == seen[0]["model"][0]


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99 bytes"),
        MemoryError(),
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    ],
)
def test_out_of_memory_is_one_line_with_advice(tmp_path, monkeypatch, error):
    def no_memory(self, x):
        raise error

    monkeypatch.setattr(UNet3D, "forward", no_memory)
    h1, h2, fsc = tiny_case()
    names = {"cube_size": "--cube_size", "batch_size": "--batch_size", "net_width": "--net_width"}
    with pytest.raises(InputError) as info:
        correct_maps(
            h1,
            h2,
            2.0,
            fsc3d_volume=fsc,
            limit_res=5.0,
            settings=tiny_settings(),
            output_dir=tmp_path,
            names=names,
        )
    text = str(info.value)
    assert text.startswith("out of memory during training of model on cpu")
    assert "use a smaller --cube_size, --batch_size, --net_width or a larger acc_batches" in text
    assert "\n" not in text


def test_out_of_memory_at_prediction_names_the_tile(tmp_path, monkeypatch):
    h1, h2, fsc = tiny_case()
    kw = dict(fsc3d_volume=fsc, limit_res=5.0, output_dir=tmp_path)
    trained = correct_maps(h1, h2, 2.0, settings=tiny_settings(), **kw)

    def no_memory(self, x):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(UNet3D, "forward", no_memory)
    with pytest.raises(InputError, match="during prediction .* smaller --predict_crop_size$"):
        correct_maps(
            h1,
            h2,
            2.0,
            settings=tiny_settings(epochs=0),
            pretrained_model=trained.model_path,
            names={"predict_crop_size": "--predict_crop_size"},
            **kw,
        )


def test_other_runtime_errors_are_not_taken_for_memory(tmp_path, monkeypatch):
    def broken(self, x):
        raise RuntimeError("shapes do not match")

    monkeypatch.setattr(UNet3D, "forward", broken)
    h1, h2, fsc = tiny_case()
    with pytest.raises(RuntimeError, match="shapes"):
        correct_maps(
            h1,
            h2,
            2.0,
            fsc3d_volume=fsc,
            limit_res=5.0,
            settings=tiny_settings(),
            output_dir=tmp_path,
        )


def test_prediction_progress_lines(monkeypatch, caplog):
    from spIsoNet.engine import predict

    monkeypatch.setattr(predict, "PROGRESS_INTERVAL", 0.0)
    volume = np.zeros((24, 24, 24), np.float32)
    with caplog.at_level(logging.INFO, logger="spIsoNet"):
        predict.predict_volume(UNet3D(TINY), volume, tile=8, overlap=4, batch_size=4)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("prediction:")]
    assert lines and "tiles/s, ETA" in lines[0] and lines[0].startswith("prediction: tile 4/")
    assert lines[-1].startswith("prediction: 125 tiles of 8³ in ") and "tiles/s" in lines[-1]


def test_spawned_processes_stop_together_at_the_time_limit(tmp_path):
    h1, h2, fsc = tiny_case()
    r = correct_maps(
        h1,
        h2,
        2.0,
        fsc3d_volume=fsc,
        limit_res=5.0,
        settings=tiny_settings(epochs=4, acc_batches=1, cpu_processes=2, time_limit=1e-6),
        output_dir=tmp_path,
    )
    assert "2 process" in r.device and len(r.loss_history) == 1 and len(r.corrected) == 2
