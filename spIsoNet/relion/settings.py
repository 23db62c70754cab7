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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

from spIsoNet.errors import InputError

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


class SettingsError(InputError):
    """An ``ISONET_*`` environment variable has an invalid value."""


def _parse_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={text!r}: expected True or False")


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
    """dataclass field bound to an environment variable and its parser."""
    return field(metadata={"env": name, "parse": parser}, **kwargs)


@dataclass(frozen=True)
class PluginSettings:
    """All settings of the plugin (defaults = the published wrapper's where it had one).

    Start conditions: ``start_healpix`` (``ISONET_START_HEALPIX``, healpix order of the previous
    iteration must be ≥) and ``start_resolution`` (``ISONET_START_RESOLUTION``, Å; the current
    FSC=0.143 resolution must be finer). Map processing: whitening between
    ``whitening_low`` Å and the current resolution, keeping the initial reference below
    ``--ini_high`` (``keep_lowres``), FSC weighting, final low-pass at the current resolution.
    Training: epochs, alpha, beta, acc_batches, n_subvolume, cube_size, net_width, batch_size;
    device/GPUs. Rendezvous of the halves: sync_timeout, partner_wait, heartbeat_timeout (s).
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
    n_subvolume: int = _env("ISONET_N_SUBVOLUME", _number(int, 1), default=1000)
    cube_size: int = _env("ISONET_CUBE_SIZE", _number(int, 8), default=64)
    net_width: int = _env("ISONET_NET_WIDTH", _number(int, 1), default=64)
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
    #: variables that were set (name → raw text), for the log
    given: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def env_names(cls) -> list[str]:
        """Names of all recognised variables."""
        return [f.metadata["env"] for f in fields(cls) if "env" in f.metadata]


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
