"""``spisonet.py``: the command line.

Each subcommand lives in its own module ``spIsoNet.cli.cmd_<name>`` exposing

* ``HELP``: one-line description shown by ``spisonet.py -h``;
* ``add_arguments(parser)``: declares the arguments (with units and defaults in the help);
* ``run(args) -> int``: does the work and returns the exit code.

Modules are imported only when their command runs, so ``spisonet.py fsc3d`` does not pay for
importing the training engine, and command modules import their heavy libraries inside ``run``
so that ``-h`` answers at once.

Failures become one line on stderr, never a traceback (:func:`describe_failure`):

* :class:`spIsoNet.errors.InputError` (bad input or options): exit code 2;
* :class:`OSError` (read-only or full file system, permission denied, a file where a folder
  should be, ...): the file and the problem in words, exit code 1;
* :class:`MemoryError`: exit code 1;
* Ctrl-C: exit code 130, SIGTERM: 143 (both raise inside the command, so that its partial
  outputs are removed; the engine answers them with its own handler).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Sequence

from spIsoNet._version import __version__
from spIsoNet.errors import InputError, describe_failure

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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Adds ``(default: X)`` only where the help text does not state its default itself.

    Nothing is added for a ``None`` default (the text says what is used then) or for on/off
    flags (``store_true``), so every help line states one default: the one used.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text.lower()
            or action.default is None
            or action.default is argparse.SUPPRESS
            or action.nargs == 0  # store_true / store_false / count-like flags
            or (not action.option_strings and action.nargs not in ("?", "*"))
        ):
            return text
        return text + " (default: %(default)s)"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that partial outputs are removed on the way out."""


def _terminate(signum, frame) -> None:
    raise _Terminated()


@contextlib.contextmanager
def _sigterm_raises():
    """Within the block SIGTERM raises :class:`_Terminated` (main thread only; restored after).

    Commands with their own signal handling (the engine's) install theirs inside this block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
        with _sigterm_raises():
            return int(args._module.run(args) or 0)
    except InputError as exc:
        print(f"spisonet.py {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as exc:
        print(f"spisonet.py {args.command}: error: {describe_failure(exc)}", file=sys.stderr)
        return 1
    except _Terminated:
        print(f"spisonet.py {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"spisonet.py {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
