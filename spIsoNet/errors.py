"""Exceptions shared by the whole package, and the words for operating-system errors.

The command-line edges (``spisonet.py`` and the RELION wrapper) turn an :class:`InputError`
into one line on stderr and exit code 2, without a traceback; :func:`describe_failure` gives the
one line for an :class:`OSError` (read-only or full file system, permission denied, ...) or a
:class:`MemoryError`.
"""

from __future__ import annotations

import errno


class InputError(Exception):
    """Bad user input: a missing or malformed file, inconsistent maps, an invalid option.

    The message must be one line that names the file (or option) and the problem.
    """


#: errno → words for one-line messages (the file name goes in front)
ERRNO_WORDS: dict[int, str] = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EEXIST: "exists already (a file where a folder is needed?)",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOENT: "no such file or folder",
    errno.ENOMEM: "out of memory",
    errno.EIO: "input/output error (failing disk or network file system?)",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files",
}


def os_error_words(exc: OSError) -> str:
    """Describe the problem of an :class:`OSError` in words (from its errno, else its text)."""
    words = ERRNO_WORDS.get(exc.errno if exc.errno is not None else -1)
    return words or " ".join(str(exc.strerror or exc or "I/O error").split())


def describe_failure(exc: BaseException) -> str:
    """One line for an OSError or MemoryError: the file (when known) and the problem in words."""
    if isinstance(exc, MemoryError):
        return "out of memory (try a machine with more free memory, or a smaller box)"
    if isinstance(exc, OSError):
        where = None if exc.filename is None else str(exc.filename)
        if where is not None and exc.filename2 is not None:
            where = f"{where} -> {exc.filename2}"
        line = os_error_words(exc) if where is None else f"{where}: {os_error_words(exc)}"
        return " ".join(line.split())
    return " ".join(str(exc).split()) or type(exc).__name__
