"""EngineSettings: one validation, messages in each edge's vocabulary, building from a mapping."""

from __future__ import annotations

import pytest

from spIsoNet.engine.settings import EngineSettings, split_batch
from spIsoNet.errors import InputError

RELION_NAMES = {"cube_size": "ISONET_CUBE_SIZE", "batch_size": "ISONET_BATCH_SIZE"}


def test_defaults_are_valid_and_the_class_is_importable_from_old_places():
    from spIsoNet.engine import EngineSettings as FromPackage
    from spIsoNet.engine.pipeline import EngineSettings as FromPipeline

    assert FromPackage is EngineSettings and FromPipeline is EngineSettings
    EngineSettings().validate(box=64)


def test_messages_name_the_setting_in_the_edge_vocabulary():
    from spIsoNet.cli.cmd_reconstruct import CLI_NAMES

    bad = EngineSettings(cube_size=30)
    with pytest.raises(InputError) as cli:
        bad.validate(names=CLI_NAMES)
    assert str(cli.value) == "--cube_size 30: must be a multiple of 2^net_depth = 8"
    with pytest.raises(InputError) as relion:
        bad.validate(names=RELION_NAMES)
    assert str(relion.value) == "ISONET_CUBE_SIZE 30: must be a multiple of 2^net_depth = 8"
    with pytest.raises(InputError) as plain:
        bad.validate()
    assert str(plain.value).startswith("cube_size 30: ")
    with pytest.raises(InputError, match="^--ncpus 0: must be >= 1$"):
        EngineSettings(ncpus=0).validate(names=CLI_NAMES)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"cube_size": 128}, "cube_size 128: larger than the map box 64"),
        ({"net_depth": 0}, "net_depth 0: must be >= 1"),
        ({"norm": "layer"}, "norm layer: must be one of group, batch, none"),
        ({"lr_schedule": "step"}, "lr_schedule step: must be one of constant, cosine"),
        ({"device": "tpu"}, "device tpu: must be one of auto, cpu, cuda"),
        ({"predict_crop_size": 4}, "predict_crop_size 4: must be >= 2^net_depth = 8"),
        ({"epochs": -1}, "epochs -1: must be >= 0"),
        ({"alpha": -1.0}, "alpha -1.0: must be >= 0"),
        ({"learning_rate": 0.0}, "learning_rate 0.0: must be > 0"),
        ({"batch_size": 3}, "batch_size 3: not a multiple of processes × acc_batches = 2"),
        ({"batch_size": 1}, "batch_size 1: smaller than processes × acc_batches"),
        ({"acc_batches": 0}, "acc_batches 0: must be >= 1"),
        ({"time_limit": 0.0}, "time_limit 0.0: must be > 0 seconds"),
        ({"seed": -3}, "seed -3: must be >= 0"),
        ({"cube_size": 32.0}, "cube_size 32.0: must be an integer"),
    ],
)
def test_each_bad_setting_is_one_line(change, message):
    with pytest.raises(InputError) as info:
        EngineSettings(**change).validate(box=64)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_batch_split_names_both_settings_of_the_edge():
    with pytest.raises(InputError) as info:
        EngineSettings(batch_size=4, acc_batches=4).validate(world=2, names=RELION_NAMES)
    text = str(info.value)
    assert text.startswith("ISONET_BATCH_SIZE 4: smaller than processes × acc_batches = 2 × 4")
    assert "raise ISONET_BATCH_SIZE or lower acc_batches" in text
    assert split_batch(8, 2, 2) == 2


def test_from_mapping_keeps_defaults_for_none_and_rejects_unknown_fields():
    s = EngineSettings.from_mapping({"cube_size": 32, "seed": None, "epochs": None})
    assert s.cube_size == 32 and s.epochs == EngineSettings().epochs and s.seed is None
    with pytest.raises(TypeError, match="cube"):
        EngineSettings.from_mapping({"cube": 32})
    t = s.replace(epochs=2)
    assert t.epochs == 2 and s.epochs == 30 and t.cube_size == 32
    assert s.as_plain()["cube_size"] == 32
    assert EngineSettings(gpu_ids=[0, 1]).as_plain()["gpu_ids"] == "[0, 1]"


def test_settings_import_without_torch():
    """The RELION plugin's plain path and the CLI's checks build settings without torch."""
    import subprocess
    import sys

    code = "import sys, spIsoNet.engine.settings; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_gpu_ids_are_checked_with_the_settings():
    from spIsoNet.cli.cmd_reconstruct import CLI_NAMES

    with pytest.raises(InputError, match="^--gpuID 0;1: expected comma-separated GPU numbers$"):
        EngineSettings(gpu_ids="0;1").validate(names=CLI_NAMES)
    with pytest.raises(InputError, match="^ISONET_GPUS -1: GPU numbers must be >= 0$"):
        EngineSettings(gpu_ids="-1").validate(names={"gpu_ids": "ISONET_GPUS"})
    EngineSettings(gpu_ids="0,1").validate()
    EngineSettings(gpu_ids=[0, 1]).validate()


def test_network_size_and_cubes_are_sized_by_the_device():
    from spIsoNet.engine.settings import SIZED_DEFAULTS

    open_sizes = EngineSettings()
    assert open_sizes.net_width is None and open_sizes.cube_size is None
    open_sizes.validate(box=24)  # None = sized later: no size check yet
    for kind, expected in (("gpu", SIZED_DEFAULTS["gpu"]), ("cuda", SIZED_DEFAULTS["gpu"])):
        sized = open_sizes.sized(kind)
        assert {k: getattr(sized, k) for k in expected} == expected
    cpu = open_sizes.sized("cpu")
    assert (cpu.net_width, cpu.cube_size, cpu.predict_crop_size, cpu.n_subvolume) == (
        16,
        32,
        48,
        200,
    )
    # what the user gave is kept
    assert EngineSettings(net_width=8).sized("gpu").net_width == 8
    assert EngineSettings.sized_default("net_width") == "64 on a GPU, 16 on the CPU"
