"""Model files: weights + architecture + epoch + optimizer state + loss history.

Only tensors and plain containers of numbers/strings are stored, so files load with
``torch.load(path, weights_only=True)`` (no pickled code is executed when reading a model).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from spIsoNet.engine.unet import UNet3D, UNetConfig
from spIsoNet.errors import InputError
from spIsoNet.io import atomic_output

FORMAT = "spIsoNet-unet-1"


def save_checkpoint(
    path: str | os.PathLike,
    net: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None,
    epoch: int,
    loss_history: list[float],
    extra: dict | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary name in the same folder, then rename).

    Parameters
    ----------
    path
        Destination ``.pt``.
    net
        The (unwrapped) :class:`UNet3D`.
    optimizer
        Its optimizer (state saved for resuming), or None.
    epoch
        Number of completed epochs.
    loss_history
        Mean training loss per completed epoch.
    extra
        Plain-data provenance (settings, voxel size, limit resolution, ...).
    """
    state = {
        "format": FORMAT,
        "config": net.config.as_dict(),
        "model_state": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "epoch": int(epoch),
        "loss_history": [float(v) for v in loss_history],
        "extra": dict(extra or {}),
    }
    final = Path(path)
    with atomic_output(final) as tmp:
        torch.save(state, tmp)
    return final


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``, on CPU)."""
    name = str(path)
    if not Path(name).is_file():
        raise InputError(f"{name}: model file not found")
    try:
        state = torch.load(name, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{name}: not a readable spIsoNet model file: {first}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{name}: not a spIsoNet model file (format {FORMAT} expected)")
    return state


def build_from_checkpoint(state: dict) -> UNet3D:
    """Instantiate the network described by a checkpoint and load its weights."""
    net = UNet3D(UNetConfig(**state["config"]))
    net.load_state_dict(state["model_state"])
    return net


def describe_config(config: UNetConfig) -> str:
    """``"width 64, depth 3, 3 conv per block, group norm"``."""
    return (
        f"width {config.width}, depth {config.depth}, {config.n_conv} conv per block, "
        f"{config.norm} norm"
    )


def check_model(state: dict, source: str | os.PathLike) -> UNetConfig:
    """Return the architecture of a checkpoint after checking that its weights fit it.

    Raises
    ------
    InputError
        No valid architecture, or weights of another architecture (missing or unexpected layers,
        other shapes).
    """
    try:
        config = UNetConfig(**state["config"])
        net = UNet3D(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{source}: no valid network architecture in it ({exc})") from None
    try:
        net.load_state_dict(state["model_state"])
    except (KeyError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise InputError(
            f"{source}: its weights do not fit its architecture ({describe_config(config)}): "
            f"{detail}"
        ) from None
    return config


def check_resumable(path: str | os.PathLike, config: UNetConfig) -> None:
    """Check that a checkpoint to ``--resume`` from holds this run's architecture.

    Raises
    ------
    InputError
        Unreadable, or another architecture (one line naming the file and both architectures).
    """
    state = load_checkpoint(path)
    found = check_model(state, path)
    if found != config:
        raise InputError(
            f"{path}: cannot resume: its network ({describe_config(found)}) differs from this "
            f"run's ({describe_config(config)}); use another output folder or the same settings"
        )
