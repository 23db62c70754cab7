"""``spisonet.py check``: report versions and the compute devices spIsoNet would use."""

from __future__ import annotations

import argparse

HELP = "print versions and available devices (CPU threads, CUDA GPUs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def _version(module: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def run(args: argparse.Namespace) -> int:
    """Print the versions, the usable CPU cores and every CUDA GPU; return the exit code (0)."""
    import torch

    from spIsoNet import __version__
    from spIsoNet.fourier import available_cores

    others = ", ".join(
        f"{name} {_version(name)}"
        for name in ("numpy", "scipy", "mrcfile", "starfile", "matplotlib")
    )
    print(f"spIsoNet {__version__}; torch {torch.__version__}; {others}")
    print(f"CPU: {available_cores()} usable core(s); torch threads: {torch.get_num_threads()}")
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            print(f"cuda:{index} {props.name} {props.total_memory / 2**30:.1f} GiB")
    else:
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        print(f"CUDA: not available (torch is {build}); spIsoNet will run on the CPU")
    return 0
