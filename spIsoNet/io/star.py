"""RELION STAR files: a small strict reader, key/value helpers and the FSC feedback writer.

The reader understands what RELION writes (``data_`` blocks holding either ``_label value``
pairs or one ``loop_`` table, ``#`` comments, quoted strings) in pure Python: the plugin's
plain path reads a 3 kB STAR file per call and must not pay ~0.5 s for importing pandas. It is
strict where a silently short table would do harm: a loop row with the wrong number of values
(a file cut in the middle of a row) is an error naming the file, block and line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spIsoNet.errors import InputError

__all__ = [
    "StarLoop",
    "key_values",
    "read_star",
    "require_labels",
    "star_version",
    "write_fsc_feedback",
]


class StarLoop(dict):
    """A ``loop_`` table: label (without ``_``) → list of values, one per row (column-major).

    Values are ``int`` or ``float`` where the text is a number, else ``str``; ``len(loop)``
    is the number of labels and :attr:`n_rows` the number of rows.
    """

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(next(iter(self.values()))) if self else 0

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as label → value."""
        return {label: column[i] for label, column in self.items()}


def _value(text: str) -> Any:
    """``int``/``float`` for numbers (as starfile reads them), the text otherwise."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _fields(line: str) -> list[str]:
    """Split a data line; quoted strings (rare in RELION files) stay one field."""
    if '"' in line or "'" in line:
        import shlex

        try:
            return shlex.split(line, comments=False, posix=True)
        except ValueError:
            pass
    return line.split()


def _parse(text: str, name: str) -> dict[str, dict | StarLoop]:
    blocks: dict[str, dict | StarLoop] = {}
    block: str | None = None
    labels: list[str] | None = None  # labels of the open loop (None: key/value block)
    rows: list[list[str]] = []

    def close_loop() -> None:
        nonlocal labels, rows
        if block is not None and labels is not None:
            table = StarLoop((label, []) for label in labels)
            for row in rows:
                for label, item in zip(labels, row):
                    table[label].append(_value(item))
            blocks[block] = table
        labels, rows = None, []

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("data_"):
            close_loop()
            block = line[len("data_") :].split()[0] if len(line) > 5 else ""
            blocks[block] = {}
            continue
        if block is None:
            raise InputError(f"{name}: malformed STAR file: line {number} before any data_ block")
        if line.startswith("loop_"):
            close_loop()
            labels = []
            continue
        if line.startswith("_"):
            parts = _fields(line)
            label = parts[0][1:]
            if labels is not None and not rows:
                labels.append(label)  # "_rlnSpectralIndex #1"
                continue
            if labels is not None:
                raise InputError(
                    f"{name}: malformed STAR file: label {parts[0]} after the rows of the loop "
                    f"in data_{block} (line {number})"
                )
            if len(parts) < 2:
                raise InputError(
                    f"{name}: malformed STAR file: {parts[0]} has no value in data_{block} "
                    f"(line {number})"
                )
            blocks[block][label] = _value(parts[1])  # type: ignore[index]
            continue
        if labels is None or not labels:
            raise InputError(
                f"{name}: malformed STAR file: unexpected line {number} in data_{block}: "
                f"{line[:40]!r}"
            )
        parts = _fields(line)
        if len(parts) != len(labels):
            raise InputError(
                f"{name}: truncated or malformed STAR file: line {number} of the loop in "
                f"data_{block} has {len(parts)} values, expected {len(labels)}"
            )
        rows.append(parts)
    close_loop()
    return blocks


def read_star(path: str | os.PathLike) -> dict[str, Any]:
    """Read every block of a STAR file.

    Returns
    -------
    dict
        block name → :class:`StarLoop` (label → list of values) for loops, or ``dict``
        label → value for key/value blocks. Labels are without the leading ``_`` and ``rln`` is
        kept (``rlnPixelSize``).

    Raises
    ------
    InputError
        Missing or unreadable/malformed file (binary, no data block, a loop row with the wrong
        number of values).
    """
    name = str(path)
    if not Path(name).is_file():
        raise InputError(f"{name}: STAR file not found")
    try:
        text = Path(name).read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"{name}: cannot read the STAR file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{name}: malformed STAR file: not text (binary data)") from None
    if "\x00" in text:
        raise InputError(f"{name}: malformed STAR file: not text (binary data)")
    blocks = _parse(text, name)
    if not blocks:
        raise InputError(f"{name}: malformed STAR file: no data blocks")
    return blocks


def star_version(path: str | os.PathLike) -> int | None:
    """Return the ``# version NNNNN`` number before the first block (30001: 3.1/4.0, 50001: 5.0)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                stripped = line.strip()
                if stripped.startswith("# version"):
                    parts = stripped.split()
                    return int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
                if stripped.startswith("data_"):
                    return None
    except OSError:
        return None
    return None


def key_values(blocks: dict[str, Any], block: str, path: str = "") -> dict[str, Any]:
    """Return a key/value block as a ``dict`` (a one-row loop is accepted too).

    Raises
    ------
    InputError
        The block is missing or is a multi-row loop.
    """
    if block not in blocks:
        raise InputError(f"{path}: STAR block data_{block} is missing")
    value = blocks[block]
    if isinstance(value, StarLoop):
        if value.n_rows == 1:
            return value.row(0)
        raise InputError(f"{path}: STAR block data_{block} is a loop, expected label/value pairs")
    return value


def require_labels(table: dict, labels: list[str], block: str, path: str) -> None:
    """Raise :class:`InputError` naming the first label of ``labels`` missing in ``table``."""
    for label in labels:
        if label not in table:
            raise InputError(f"{path}: STAR block data_{block} has no {label}")


def write_fsc_feedback(path: str | os.PathLike, fsc) -> None:
    """``<root>_external_reconstruct_out.star``: per-shell FSC for RELION (``# version 30001``).

    Parameters
    ----------
    path
        Destination (written atomically).
    fsc
        FSC per original-size shell ``[N//2 + 1]``, shell 0 = DC.
    """
    from spIsoNet.io.atomic import write_text_atomic

    lines = [
        "",
        "# version 30001",
        "",
        "data_external_reconstruct_out",
        "",
        "loop_ ",
        "_rlnSpectralIndex #1 ",
        "_rlnFourierShellCorrelation #2 ",
    ]
    lines += [f"{i:12d} {float(v):12.6f} " for i, v in enumerate(fsc)]
    write_text_atomic(path, "\n".join(lines) + "\n \n")
