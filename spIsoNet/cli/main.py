"""``spisonet.py``: the command line.

Each subcommand lives in its own module ``spIsoNet.cli.cmd_<name>`` exposing

* ``HELP``: one-line description shown by ``spisonet.py -h``;
* ``add_arguments(parser)``: declares the arguments (with units and defaults in the help);
* ``run(args) -> int``: does the work and returns the exit code.

Modules are imported only when their command runs, so ``spisonet.py fsc3d`` does not pay for
importing the training engine. :class:`spIsoNet.errors.InputError` becomes one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from spIsoNet._version import __version__
from spIsoNet.errors import InputError

#: command name → module name (in spIsoNet.cli), in the order shown by ``-h``
COMMANDS: dict[str, str] = {
    "fsc3d": "cmd_fsc3d",
    "reconstruct": "cmd_reconstruct",
    "demo": "cmd_demo",
    "whitening": "cmd_whitening",
    "combine_map": "cmd_combine_map",
    "lowpass": "cmd_lowpass",
    "fsc": "cmd_fsc",
    "check": "cmd_check",
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _load(command: str):
    return importlib.import_module(f"spIsoNet.cli.{COMMANDS[command]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the parser; with ``only``, import just that command's module (fast start-up)."""
    parser = argparse.ArgumentParser(
        prog="spisonet.py",
        description="spIsoNet: correct preferred-orientation anisotropy in cryo-EM maps.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"spIsoNet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, add_help=False)
            continue
        module = _load(name)
        cmd = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``spisonet.py``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else None)
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if getattr(args, "_module", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except InputError as exc:
        print(f"spisonet.py {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spisonet.py {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
