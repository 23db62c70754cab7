"""Fixtures of the engine tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids oversubscription overhead on a shared 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _package_log_reaches_caplog():
    """A CLI test's setup_logging stops propagation; let caplog see the package's lines."""
    import logging

    logger = logging.getLogger("spIsoNet")
    old = logger.propagate
    logger.propagate = True
    yield
    logger.propagate = old
