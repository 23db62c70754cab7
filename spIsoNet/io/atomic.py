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
    """Return the process umask: from /proc on Linux (no side effect), else set and restored."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_next_to(final: Path, suffix: str | None) -> Path:
    """Create an empty temporary file next to ``final`` with the umask's permissions."""
    folder = final.parent if str(final.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{final.name}.",
            suffix=(final.suffix if suffix is None else suffix) + ".tmp",
            dir=folder,
        )
    except OSError as exc:  # name the output the user asked for, not the temporary
        raise _naming(exc, final) from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the file the permissions an ordinary open() would (0666 less
    # the umask), like RELION's outputs, so that others in a shared project can read it.
    os.chmod(tmp, 0o666 & ~_current_umask())
    return tmp


def _naming(exc: OSError, final: Path, tmp: Path | None = None) -> OSError:
    """Return the same OSError (same type and errno) naming ``final``, not the temporary file.

    An error that names another file (e.g. an input read inside the block) is returned as is.
    """
    if exc.filename is not None and tmp is not None and str(exc.filename) != str(tmp):
        return exc
    renamed = type(exc)(exc.errno, exc.strerror or str(exc), str(final))
    renamed.__cause__ = exc
    return renamed


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()


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
    propagates; ``path`` is untouched. An :class:`OSError` (disk full, read-only file system,
    ...) names ``path``, not the temporary file.
    """
    final = Path(path)
    tmp = _temporary_next_to(final, suffix)
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        _discard(tmp)
        raise _naming(exc, final, tmp) from None
    except BaseException:
        _discard(tmp)
        raise


class OutputSet:
    """Outputs of one command written as a set: all of them or none.

    :meth:`stage` yields a temporary file next to each output; the files take their final
    names together in :meth:`commit` (renames in the same folders, which do not fail for lack
    of space). :meth:`discard` (or an exception inside :func:`output_set`) removes every
    temporary, so a failed run leaves no incomplete set of outputs behind as if it were
    complete, and outputs of an earlier run stay as they were.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    @contextlib.contextmanager
    def stage(self, path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
        """Yield a temporary path for ``path``; it is renamed to ``path`` at :meth:`commit`."""
        final = Path(path)
        tmp = _temporary_next_to(final, suffix)
        self._pending.append((tmp, final))
        try:
            yield tmp
        except OSError as exc:
            raise _naming(exc, final, tmp) from None

    def commit(self) -> list[Path]:
        """Give every staged file its final name; returns the final paths."""
        done = []
        try:
            while self._pending:
                tmp, final = self._pending[0]
                try:
                    os.replace(tmp, final)
                except OSError as exc:
                    raise _naming(exc, final, tmp) from None
                self._pending.pop(0)
                done.append(final)
        finally:
            self.discard()
        return done

    def discard(self) -> None:
        """Remove the temporaries not yet committed."""
        for tmp, _ in self._pending:
            _discard(tmp)
        self._pending.clear()


@contextlib.contextmanager
def output_set() -> Iterator[OutputSet]:
    """Context of an :class:`OutputSet`: committed at the end of the block, discarded on error."""
    outputs = OutputSet()
    try:
        yield outputs
    except BaseException:
        outputs.discard()
        raise
    outputs.commit()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    r"""Write ``text`` to ``path`` atomically (UTF-8, ``\n`` line endings)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
