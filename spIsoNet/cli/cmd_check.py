"""``spisonet.py check``: report versions and the compute devices spIsoNet would use."""

from __future__ import annotations

import argparse

HELP = "print versions and available devices (CPU threads, CUDA GPUs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args: argparse.Namespace) -> int:
    import numpy
    import torch

    from spIsoNet import __version__

    print(f"spIsoNet {__version__}; torch {torch.__version__}; numpy {numpy.__version__}")
    print(f"CPU threads: {torch.get_num_threads()}")
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            print(f"cuda:{index} {props.name} {props.total_memory / 2**30:.1f} GiB")
    else:
        print("CUDA: not available (spIsoNet will run on the CPU)")
    return 0
