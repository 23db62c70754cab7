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
