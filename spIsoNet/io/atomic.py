"""Atomic file output: write to a temporary name in the target folder, then rename.

A reader (RELION, a user's viewer, a concurrent process) therefore never sees a half-written
file, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _current_umask() -> int:
    """The process umask: from /proc on Linux (no side effect), else set and restored at once."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    Parameters
    ----------
    path
        Final destination. Its folder must exist.
    suffix
        Suffix of the temporary file (default: the suffix of ``path``, so that writers that
        look at the extension, e.g. ``.mrc``, behave as for the final name).

    On any exception inside the ``with`` block the temporary file is removed and the exception
    propagates; ``path`` is untouched.
    """
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.",
        suffix=(final.suffix if suffix is None else suffix) + ".tmp",
        dir=folder,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the file the permissions an ordinary open() would (0666 less
    # the umask), like RELION's outputs, so that others in a shared project can read it.
    os.chmod(tmp, 0o666 & ~_current_umask())
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8, ``\\n`` line endings)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
