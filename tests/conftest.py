"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def shared_dir() -> Path:
    """The project's shared material (RELION vectors, docs); CI has it beside the checkout."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return SHARED
