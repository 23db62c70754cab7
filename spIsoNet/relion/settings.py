"""``ISONET_*`` environment variables of the RELION plugin, parsed and validated.

The published spIsoNet wrapper's names and defaults are kept; ours are added. Every value is
validated: an unparsable or out-of-range value raises :class:`SettingsError` naming the variable
(never a silent default). How the wrapper reacts is documented in the README (RELION
section): at the first iteration it stops the job with that one line; later it falls back to the
plain map (or stops if ``ISONET_STRICT`` is true).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

from spIsoNet.booleans import parse_bool
from spIsoNet.engine.settings import SIZED_DEFAULTS as _ENGINE_SIZED
from spIsoNet.errors import InputError


class SettingsError(InputError):
    """An ``ISONET_*`` environment variable has an invalid value."""


def _parse_bool(name: str, text: str) -> bool:
    try:
        return parse_bool(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r}: expected True or False") from None


def _number(kind: type, low: float | None = None, high: float | None = None, *, strict_low=False):
    def parse(name: str, text: str):
        raw = text.strip()
        try:
            number = float(raw)
        except ValueError:
            raise SettingsError(f"{name}={text!r}: expected a number") from None
        if kind is int:
            if not number.is_integer():
                raise SettingsError(f"{name}={text!r}: expected an integer")
            value = int(number)
        else:
            value = number
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingsError(f"{name}={text!r}: expected a finite number")
        if low is not None and (value <= low if strict_low else value < low):
            bound = f"> {low:g}" if strict_low else f">= {low:g}"
            raise SettingsError(f"{name}={text!r}: must be {bound}")
        if high is not None and value > high:
            raise SettingsError(f"{name}={text!r}: must be <= {high:g}")
        return value

    return parse


def _parse_auto_bool(name: str, text: str) -> bool | None:
    if text.strip().lower() == "auto":
        return None
    try:
        return parse_bool(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r}: expected auto, True or False") from None


def _parse_device(name: str, text: str) -> str:
    value = text.strip().lower()
    if value in {"auto", "cpu", "cuda"}:
        return value
    raise SettingsError(f"{name}={text!r}: expected auto, cpu or cuda")


def _parse_gpus(name: str, text: str) -> tuple[int, ...] | None:
    value = text.strip()
    if value.lower() in {"", "none"}:
        return None
    try:
        ids = tuple(int(part) for part in value.replace(" ", "").split(","))
    except ValueError:
        raise SettingsError(f"{name}={text!r}: expected GPU ids like 0,1") from None
    if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise SettingsError(f"{name}={text!r}: GPU ids must be distinct and >= 0")
    return ids


def _env(name: str, parser: Callable[[str, str], object], **kwargs):
    """Declare a dataclass field bound to an environment variable and its parser."""
    return field(metadata={"env": name, "parse": parser}, **kwargs)


@dataclass(frozen=True)
class PluginSettings:
    """All settings of the plugin (defaults = the published wrapper's where it had one).

    Start conditions: ``start_healpix`` (``ISONET_START_HEALPIX``, healpix order of the previous
    iteration must be ≥) and ``start_resolution`` (``ISONET_START_RESOLUTION``, Å; the current
    FSC=0.143 resolution must be finer). Map processing: whitening between
    ``whitening_low`` Å and the current resolution, keeping the initial reference below
    ``--ini_high`` (``keep_lowres``), FSC weighting, final low-pass at the current resolution.
    Training: epochs, alpha, beta, acc_batches, n_subvolume, cube_size, net_width, net_depth,
    learning_rate, batch_size, predict_crop (prediction tile edge), ncpus (CPU threads; default
    the cores of the affinity mask, at most ``OMP_NUM_THREADS``), time_limit (seconds of training
    per call, the cost knob), warm_start (continue from the previous iteration's model of the
    same class/half when its architecture matches); device/GPUs. Rendezvous of the halves:
    sync_timeout, partner_wait, heartbeat_timeout (s).
    """

    start_healpix: int = _env("ISONET_START_HEALPIX", _number(int, 0), default=3)
    start_resolution: float = _env(
        "ISONET_START_RESOLUTION", _number(float, 0, strict_low=True), default=15.0
    )
    epochs: int = _env("ISONET_EPOCHS", _number(int, 1), default=5)
    alpha: float = _env("ISONET_ALPHA", _number(float, 0), default=1.0)
    beta: float = _env("ISONET_BETA", _number(float, 0), default=0.5)
    acc_batches: int = _env("ISONET_ACC_BATCHES", _number(int, 1), default=2)
    retrain_each_iter: bool = _env("ISONET_RETRAIN_EACH_ITER", _parse_bool, default=True)
    keep_lowres: bool = _env("ISONET_KEEP_LOWRES", _parse_bool, default=False)
    whitening: bool = _env("ISONET_WHITENING", _parse_bool, default=True)
    whitening_low: float = _env(
        "ISONET_WHITENING_LOW", _number(float, 0, strict_low=True), default=10.0
    )
    fsc_weighting: bool = _env("ISONET_FSC_WEIGHTING", _parse_bool, default=True)
    lowpass: bool = _env("ISONET_LOWPASS", _parse_bool, default=True)
    fsc_05: bool = _env("ISONET_FSC_05", _parse_bool, default=False)
    # ours
    # None: sized by the device (SIZED_DEFAULTS)
    n_subvolume: int | None = _env("ISONET_N_SUBVOLUME", _number(int, 1), default=None)
    cube_size: int | None = _env("ISONET_CUBE_SIZE", _number(int, 8), default=None)
    net_width: int | None = _env("ISONET_NET_WIDTH", _number(int, 1), default=None)
    net_depth: int = _env("ISONET_NET_DEPTH", _number(int, 1, 6), default=3)
    learning_rate: float | None = _env(
        "ISONET_LEARNING_RATE", _number(float, 0, 1, strict_low=True), default=None
    )
    predict_crop: int | None = _env("ISONET_PREDICT_CROP", _number(int, 8), default=None)
    ncpus: int | None = _env("ISONET_NCPUS", _number(int, 1), default=None)
    time_limit: float | None = _env(
        "ISONET_TIME_LIMIT", _number(float, 0, strict_low=True), default=None
    )
    warm_start: bool = _env("ISONET_WARM_START", _parse_bool, default=True)
    batch_size: int | None = _env("ISONET_BATCH_SIZE", _number(int, 1), default=None)
    device: str = _env("ISONET_DEVICE", _parse_device, default="auto")
    gpus: tuple[int, ...] | None = _env("ISONET_GPUS", _parse_gpus, default=None)
    sync_timeout: float = _env(
        "ISONET_SYNC_TIMEOUT", _number(float, 0, strict_low=True), default=7200.0
    )
    partner_wait: float = _env("ISONET_PARTNER_WAIT", _number(float, 0), default=60.0)
    heartbeat_timeout: float = _env(
        "ISONET_HEARTBEAT_TIMEOUT", _number(float, 0, strict_low=True), default=120.0
    )
    strict: bool = _env("ISONET_STRICT", _parse_bool, default=False)
    fsc_feedback: bool = _env("ISONET_FSC_FEEDBACK", _parse_bool, default=False)
    seed: int | None = _env("ISONET_SEED", _number(int, 0), default=None)
    fast_reconstruction: bool = _env("ISONET_FAST_RECONSTRUCTION", _parse_bool, default=False)
    mixed_precision: bool | None = _env("ISONET_MIXED_PRECISION", _parse_auto_bool, default=None)
    fourier_crop: bool = _env("ISONET_FOURIER_CROP", _parse_bool, default=False)
    #: variables that were set (name → raw text), for the log
    given: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def env_names(cls) -> list[str]:
        """Names of all recognised variables."""
        return [f.metadata["env"] for f in fields(cls) if "env" in f.metadata]

    @classmethod
    def defaults(cls) -> list[tuple[str, object]]:
        """``(variable, default)`` of every setting, in declaration order (for ``--help``)."""
        out = []
        for f in fields(cls):
            if "env" not in f.metadata:
                continue
            default = f.default
            if f.name in SIZED_DEFAULTS["gpu"]:
                gpu, cpu = SIZED_DEFAULTS["gpu"][f.name], SIZED_DEFAULTS["cpu"][f.name]
                default = f"{gpu if gpu is not None else 'none'} on a GPU, {cpu} on a CPU"
            out.append((f.metadata["env"], default))
        return out


#: engine field → the plugin variable that sets it (messages of EngineSettings.validate)
ENGINE_NAMES: dict[str, str] = {
    "epochs": "ISONET_EPOCHS",
    "alpha": "ISONET_ALPHA",
    "beta": "ISONET_BETA",
    "n_subvolume": "ISONET_N_SUBVOLUME",
    "cube_size": "ISONET_CUBE_SIZE",
    "predict_crop_size": "ISONET_PREDICT_CROP",
    "batch_size": "ISONET_BATCH_SIZE",
    "acc_batches": "ISONET_ACC_BATCHES",
    "learning_rate": "ISONET_LEARNING_RATE",
    "net_width": "ISONET_NET_WIDTH",
    "net_depth": "ISONET_NET_DEPTH",
    "seed": "ISONET_SEED",
    "device": "ISONET_DEVICE",
    "gpu_ids": "ISONET_GPUS",
    "ncpus": "ISONET_NCPUS",
    "time_limit": "ISONET_TIME_LIMIT",
    "mixed_precision": "ISONET_MIXED_PRECISION",
    "fourier_crop": "ISONET_FOURIER_CROP",
}


#: Defaults of the settings the user did not give, by the kind of device the correction runs
#: on: the engine's device-sized network and cubes (one home:
#: :data:`spIsoNet.engine.settings.SIZED_DEFAULTS`), and a time limit per call on a CPU, so that
#: a refinement with correction stays within a few times RELION's own time
#: (docs/benchmarks.md); a GPU trains the whole budget.
SIZED_DEFAULTS: dict[str, dict[str, object]] = {
    kind: {
        "n_subvolume": sizes["n_subvolume"],
        "cube_size": sizes["cube_size"],
        "net_width": sizes["net_width"],
        "learning_rate": sizes["learning_rate"],
        "predict_crop": sizes["predict_crop_size"],
        "time_limit": {"gpu": None, "cpu": 45.0}[kind],
    }
    for kind, sizes in _ENGINE_SIZED.items()
}


def device_kind(device: str, gpus: tuple[int, ...] | None = None) -> str:
    """Return ``"gpu"`` or ``"cpu"``: where ``device`` (auto/cpu/cuda) will run the training.

    ``auto`` asks torch when it is already loaded (a correcting call), else looks for an NVIDIA
    driver with a visible GPU without importing torch (the plain path stays torch-free).
    """
    if device == "cpu":
        return "cpu"
    if device == "cuda" or gpus is not None:
        return "gpu"
    torch = sys.modules.get("torch")
    if torch is not None:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "cpu"
    try:
        return "gpu" if any(os.scandir("/proc/driver/nvidia/gpus")) else "cpu"
    except OSError:
        return "cpu"


def sized(settings: PluginSettings, name: str, kind: str):
    """Return the value of setting ``name``: the user's, else the default for ``kind``."""
    value = getattr(settings, name)
    return SIZED_DEFAULTS[kind][name] if value is None else value


def engine_settings(settings: PluginSettings, box: int, environ: Mapping[str, str] | None = None):
    """Build the :class:`~spIsoNet.engine.settings.EngineSettings` of a call once, validated.

    ``cube_size`` and the prediction tile are capped at the box (rounded down to a multiple of
    ``2**net_depth``); device ``cuda`` when ``ISONET_GPUS`` is set and the device is ``auto``.
    Network size, training cubes and time limit not given by the user come from
    :data:`SIZED_DEFAULTS` for the device the training will run on (:func:`device_kind`).

    Raises
    ------
    InputError
        An engine setting out of range, named by its ``ISONET_*`` variable.
    """
    from spIsoNet.engine.device import cpu_threads  # one home of the thread policy
    from spIsoNet.engine.settings import EngineSettings

    multiple = 2**settings.net_depth
    device = settings.device
    if settings.gpus is not None and device == "auto":
        device = "cuda"
    kind = device_kind(device, settings.gpus)
    engine = EngineSettings.from_mapping(
        {
            "epochs": settings.epochs,
            "alpha": settings.alpha,
            "beta": settings.beta,
            "n_subvolume": sized(settings, "n_subvolume", kind),
            "cube_size": min(sized(settings, "cube_size", kind), box // multiple * multiple),
            "predict_crop_size": min(sized(settings, "predict_crop", kind), box),
            "batch_size": settings.batch_size,
            "acc_batches": settings.acc_batches,
            "learning_rate": sized(settings, "learning_rate", kind),
            "net_width": sized(settings, "net_width", kind),
            "net_depth": settings.net_depth,
            "seed": settings.seed,
            "device": device,
            "gpu_ids": list(settings.gpus) if settings.gpus is not None else None,
            "ncpus": cpu_threads(settings.ncpus, environ),
            "time_limit": sized(settings, "time_limit", kind),
            "mixed_precision": settings.mixed_precision,
            "fourier_crop": settings.fourier_crop,
            "show_progress": False,
        }
    )
    engine.validate(box=box, names=ENGINE_NAMES)
    return engine


def strict_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """``ISONET_STRICT`` read on its own, leniently (also when other settings are invalid)."""
    environ = os.environ if environ is None else environ
    try:
        return parse_bool(environ.get("ISONET_STRICT", "false"))
    except ValueError:
        return False


#: published variables we accept but do not implement (a warning is logged when set to true)
UNSUPPORTED = ("ISONET_ANGULAR_WHITEN", "ISONET_3DFSD")


def read_settings(environ: Mapping[str, str] | None = None) -> tuple[PluginSettings, list[str]]:
    """Parse the environment.

    Returns
    -------
    (PluginSettings, list of warnings)

    Raises
    ------
    SettingsError
        The first invalid variable (one line: name, value, what is expected). All variables
        are checked; the message lists every invalid one.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    given: dict[str, str] = {}
    errors: list[str] = []
    for f in fields(PluginSettings):
        name = f.metadata.get("env")
        if name is None or name not in environ:
            continue
        text = environ[name]
        given[name] = text
        if text.strip() == "" and f.default is None:
            continue
        try:
            values[f.name] = f.metadata["parse"](name, text)
        except SettingsError as exc:
            errors.append(str(exc))
    warnings = []
    for name in UNSUPPORTED:
        if name in environ:
            try:
                on = _parse_bool(name, environ[name])
            except SettingsError as exc:
                errors.append(str(exc))
                continue
            if on:
                warnings.append(f"{name} is not supported by this plugin and is ignored")
    if "CONDA_ENV" in environ:
        warnings.append("CONDA_ENV is not needed (no conda activation is done) and is ignored")
    known = set(PluginSettings.env_names()) | set(UNSUPPORTED)
    for name in sorted(environ):
        if name.startswith("ISONET_") and name not in known:
            warnings.append(f"{name} is not a known setting and is ignored")
    if errors:
        raise SettingsError("invalid setting: " + "; ".join(errors))
    return PluginSettings(**values, given=given), warnings
