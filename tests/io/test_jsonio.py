"""Strict JSON output (spIsoNet.io.jsonio) and the stage timer (spIsoNet.timing)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from spIsoNet.io.jsonio import to_plain, write_json
from spIsoNet.timing import stage_timer


@dataclass(frozen=True)
class _Record:
    value: float

    def to_json(self) -> dict:
        return {"renamed": self.value}


def test_write_json_is_strict_with_numpy_nan_paths_and_records(tmp_path):
    payload = {
        "nan": float("nan"),
        "inf": np.float32(np.inf),
        "array": np.arange(3, dtype=np.int64),
        "scalar": np.float64(1.5),
        "flag": np.bool_(True),
        "path": Path("a/b"),
        "record": _Record(2.0),
    }
    path = write_json(tmp_path / "r.json", payload)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert loaded == {
        "nan": None,
        "inf": None,
        "array": [0, 1, 2],
        "scalar": 1.5,
        "flag": True,
        "path": "a/b",
        "record": {"renamed": 2.0},
    }


def test_write_json_gets_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "p.json", {"a": 1})
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644


def test_to_plain_leaves_plain_values():
    assert to_plain({"a": [1, "x", None]}) == {"a": [1, "x", None]}


def test_stage_timer_accumulates_and_records_on_error():
    timings: dict[str, float] = {}
    with stage_timer(timings, "a"):
        pass
    first = timings["a"]
    with stage_timer(timings, "a"):
        pass
    assert timings["a"] >= first >= 0.0
    with pytest.raises(RuntimeError), stage_timer(timings, "b"):
        raise RuntimeError("boom")
    assert "b" in timings
