"""Demo settings: one EngineSettings plus the demo's own fields (spIsoNet.demo.settings)."""

from __future__ import annotations

from spIsoNet import demo
from spIsoNet.engine import EngineSettings


def test_default_demo_uses_reconstructs_defaults_with_the_published_cpu_budget():
    settings = demo.default_settings(seed=4)
    engine = settings.run_engine_settings(show_progress=False)
    assert isinstance(engine, EngineSettings)
    defaults = EngineSettings()
    # every engine setting is reconstruct's default except the budget (epochs) and the seed
    changed = {k for k in defaults.as_plain() if getattr(engine, k) != getattr(defaults, k)} - {
        "seed",
        "show_progress",
    }
    assert changed == {"epochs"} and engine.epochs == 4
    cpu = engine.sized("cpu")  # what the CPU gives the open sizes: 4 × 200 cubes of 32³
    assert (cpu.n_subvolume, cpu.cube_size, cpu.net_width, cpu.predict_crop_size) == (
        200, 32, 16, 48,
    )  # fmt: skip
    assert engine.seed == 4 == settings.simulation.seed and engine.show_progress is False
    assert settings.simulation.box == 64 and settings.limit_fsc == 0.5


def test_overrides_reach_engine_simulation_and_orientation():
    settings = demo.default_settings(
        quick=True, epochs=3, net_width=4, device="cpu", snr=0.01, n_particles=500,
        n_directions=32, ncpus=None,
    )  # fmt: skip
    assert settings.engine.epochs == 3 and settings.engine.net_width == 4
    assert settings.engine.device == "cpu" and settings.engine.cube_size == 16
    assert settings.simulation.snr == 0.01 and settings.simulation.box == 40
    assert settings.simulation.orientation.n_particles == 500
    assert settings.n_directions == 32


def test_report_lists_the_same_settings_as_before():
    data = demo.default_settings(quick=True).to_json()
    assert list(data) == [
        "epochs", "n_subvolume", "cube_size", "net_width", "net_depth", "n_conv", "batch_size",
        "learning_rate", "norm", "alpha", "beta", "predict_crop_size", "limit_fsc", "device",
        "ncpus", "fsc3d_cone", "n_directions", "metric_cone",
    ]  # fmt: skip
    assert data["epochs"] == 2 and data["n_directions"] == 64
