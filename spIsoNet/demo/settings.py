"""What the demo simulates, how it trains (an :class:`EngineSettings`) and how it measures."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from spIsoNet.engine.settings import EngineSettings
from spIsoNet.simulate import OrientationModel, SimulationSettings

__all__ = ["DemoSettings", "default_settings", "demo_engine_settings"]

#: engine fields the demo report lists under ``demo_settings`` (the report's format)
REPORTED_ENGINE_FIELDS = (
    "epochs", "n_subvolume", "cube_size", "net_width", "net_depth", "n_conv", "batch_size",
    "learning_rate", "norm", "alpha", "beta", "predict_crop_size",
)  # fmt: skip
_ORIENTATION_KEYS = {"n_particles", "fraction_preferred", "cone_angle", "n_views"}
_SIMULATION_KEYS = {"snr", "voxel_size", "b_factor", "envelope_b"}


#: the demo's training budget: the published tool's CPU budget (4 epochs of the device-sized
#: number of cubes: 200 on the CPU, i.e. 800 training samples); everything else is the engine's
#: default, as ``reconstruct`` uses it
DEMO_EPOCHS = 4


def demo_engine_settings(**changes: object) -> EngineSettings:
    """Return the demo's engine settings: ``reconstruct``'s defaults with the demo's budget.

    The network size and cubes are sized by the device when the demo runs (the engine's
    :data:`~spIsoNet.engine.settings.SIZED_DEFAULTS`), as for ``reconstruct``; the seed is set
    from the simulation seed. ``changes`` are applied on top.
    """
    base = EngineSettings(epochs=DEMO_EPOCHS)
    return base.replace(**changes) if changes else base


@dataclass
class DemoSettings:
    """What the demo simulates, how it trains and how it measures the result.

    Attributes
    ----------
    simulation : SimulationSettings
        The simulated case (box, voxel size, particles, orientation distribution, SNR, seed).
    engine : EngineSettings
        Training and prediction (:func:`demo_engine_settings`); its ``seed`` and
        ``show_progress`` are set by :func:`spIsoNet.demo.run_demo`.
    limit_fsc : float
        ``limit_res`` given to the engine = resolution where the masked half-map FSC falls below
        this (0.5: the published RELION wrapper's ISONET_FSC_05 choice; 0.143: the global
        gold-standard resolution). Only frequencies inside it are replaced by the network.
    fsc3d_cone : float
        Cone half-angle of the FSC3D given to the engine, degrees.
    n_directions : int
        Directions of the directional FSC-to-truth (Fibonacci, one hemisphere).
    metric_cone : float
        Cone half-angle of the directional FSC-to-truth, degrees (3DFSC convention 20°).
    """

    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    engine: EngineSettings = field(default_factory=demo_engine_settings)
    limit_fsc: float = 0.5
    fsc3d_cone: float = 10.0
    n_directions: int = 128
    metric_cone: float = 20.0

    def run_engine_settings(self, show_progress: bool = True) -> EngineSettings:
        """Return the engine settings of a run: seeded with the simulation seed."""
        return self.engine.replace(seed=self.simulation.seed, show_progress=show_progress)

    def to_json(self) -> dict:
        """Return the report's ``demo_settings``: the demo's engine fields, then its own."""
        out: dict = {k: getattr(self.engine, k) for k in REPORTED_ENGINE_FIELDS}
        out.update(
            limit_fsc=self.limit_fsc,
            device=self.engine.device,
            ncpus=self.engine.ncpus,
            fsc3d_cone=self.fsc3d_cone,
            n_directions=self.n_directions,
            metric_cone=self.metric_cone,
        )
        return out


def default_settings(
    *, quick: bool = False, box: int | None = None, seed: int = 0, **overrides
) -> DemoSettings:
    """Demo settings: the full demo (box 64), or ``quick`` ones for tests (box 40, tiny net).

    Parameters
    ----------
    quick : bool
        Small box and short training: checks the whole path in well under a minute; the
        quality targets are not expected to be met.
    box : int, optional
        Box edge (default 64, quick 40).
    seed : int
        Simulation and training seed.
    overrides
        Any field of :class:`DemoSettings`, :class:`EngineSettings`, :class:`SimulationSettings`
        or :class:`OrientationModel` by name (``None`` values are ignored).
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    orientation_over = {k: overrides.pop(k) for k in list(overrides) if k in _ORIENTATION_KEYS}
    sim_over = {k: overrides.pop(k) for k in list(overrides) if k in _SIMULATION_KEYS}
    engine_fields = set(EngineSettings.__dataclass_fields__)
    engine_over = {k: overrides.pop(k) for k in list(overrides) if k in engine_fields}
    if quick:
        orientation = OrientationModel(n_particles=8000, n_views=500)
        sim = SimulationSettings(box=box or 40, voxel_size=2.5, seed=seed, orientation=orientation)
        engine = demo_engine_settings(
            epochs=2, n_subvolume=24, cube_size=16, net_depth=2, predict_crop_size=40
        )
        base = DemoSettings(simulation=sim, engine=engine, n_directions=64)
    else:
        base = DemoSettings(simulation=SimulationSettings(box=box or 64, seed=seed))
    sim = base.simulation
    if orientation_over:
        sim = replace(sim, orientation=replace(sim.orientation, **orientation_over))
    if sim_over:
        sim = replace(sim, **sim_over)
    engine = base.engine.replace(**engine_over) if engine_over else base.engine
    return replace(base, simulation=sim, engine=engine, **overrides)
