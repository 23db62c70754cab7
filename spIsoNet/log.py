"""Logging with timestamps, shared by the CLI, the engine and the RELION wrapper."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "spIsoNet"
_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
_DATEFMT = "%Y-%m-%d %H:%M:%S"


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the package logger (or a child of it, e.g. ``get_logger("fsc3d")``)."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


def setup_logging(
    level: int = logging.INFO, log_file: str | Path | None = None, stream=sys.stdout
) -> logging.Logger:
    """Configure the package logger once: timestamped lines on ``stream`` and optionally a file.

    Calling it again replaces the handlers instead of duplicating them.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(_FORMAT, _DATEFMT)
    if stream is not None:
        console = logging.StreamHandler(stream)
        console.setFormatter(formatter)
        logger.addHandler(console)
    if log_file is not None:
        file_handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
    logger.propagate = False
    return logger


class TagFilter(logging.Filter):
    """Adds ``record.tag`` (e.g. ``it004 half1 class001 pid 123``) for the format strings."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag

    def filter(self, record: logging.LogRecord) -> bool:
        """Set the tag; never drops a record."""
        record.tag = self.tag
        return True


class SummaryFilter(logging.Filter):
    """Pass the records meant for the console (RELION's run.out).

    Warnings and errors, info records logged with ``extra={"summary": True}``, and the training's
    progress lines (step, loss, ETA; at most one per 30 s) and epoch losses. Progress records are
    recognised by ``extra={"progress": True}`` or, for the engine's current lines, by their
    format (``... ETA ...`` / ``epoch %d/%d loss``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Return True for the records described above."""
        if record.levelno >= logging.WARNING or getattr(record, "summary", False):
            return True
        if getattr(record, "progress", False):
            return True
        text = record.msg if isinstance(record.msg, str) else ""
        return record.name.startswith(f"{LOGGER_NAME}.engine") and (
            "ETA" in text or "epoch %d/%d loss" in text
        )


def setup_tagged_logging(
    log_file: str | Path | None, tag: str, *, console: bool = True, prefix: str = "spIsoNet"
) -> logging.Logger:
    """Package logger for a program that shares a log file with concurrent copies of itself.

    The file gets every line with time, level and ``tag``; stdout (``console``, the current
    ``sys.stdout``) only the summary lines (:class:`SummaryFilter`), as
    ``<prefix> [<tag>] message``. An unopenable log file is reported once on stderr and logging
    continues on stdout.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    tag_filter = TagFilter(tag)
    if log_file is not None:
        try:
            file_handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        except OSError as exc:  # e.g. a read-only folder: the program's own writes will say so
            print(f"{prefix}: cannot open {log_file}: {exc.strerror}", file=sys.stderr)
        else:
            file_handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)-7s [%(tag)s] %(message)s", _DATEFMT)
            )
            file_handler.addFilter(tag_filter)
            logger.addHandler(file_handler)
    if console:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(f"{prefix} [%(tag)s] %(message)s"))
        handler.addFilter(tag_filter)
        handler.addFilter(SummaryFilter())
        logger.addHandler(handler)
    logger.propagate = False
    return logger


def summary(logger: logging.Logger, message: str, *args) -> None:
    """Log ``message`` at info level as a summary line (also shown on the console)."""
    logger.info(message, *args, extra={"summary": True})
