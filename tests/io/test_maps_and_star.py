"""MRC/STAR input validation, atomic writes and round trips."""

from __future__ import annotations

import errno
import os

import mrcfile
import numpy as np
import pytest

from spIsoNet.errors import InputError, describe_failure
from spIsoNet.io import (
    MapData,
    atomic_output,
    check_same_grid,
    key_values,
    read_map,
    read_mask,
    read_star,
    require_contrast,
    write_map,
)
from spIsoNet.io.atomic import output_set


def _write_raw(path, data, voxel_size=1.5):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data, dtype=np.float32))
        mrc.voxel_size = voxel_size


def test_round_trip_keeps_data_voxel_size_and_origin(tmp_path, rng):
    data = rng.standard_normal((12, 12, 12)).astype(np.float32)
    path = write_map(tmp_path / "a.mrc", data, 1.23, origin=(1.0, 2.0, 3.0))
    loaded = read_map(path)
    np.testing.assert_array_equal(loaded.data, data)
    assert loaded.voxel_size == pytest.approx(1.23, rel=1e-6)
    assert loaded.origin == pytest.approx((1.0, 2.0, 3.0))
    assert loaded.data.dtype == np.float32
    assert not [p for p in os.listdir(tmp_path) if p != "a.mrc"]


def test_gzip_maps_are_read_and_written(tmp_path, rng):
    data = rng.standard_normal((8, 8, 8)).astype(np.float32)
    write_map(tmp_path / "a.mrc.gz", data, 2.0)
    np.testing.assert_array_equal(read_map(tmp_path / "a.mrc.gz").data, data)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b"this is not an MRC file" * 100), "not a readable MRC"),
        (lambda p: _write_raw(p, np.zeros((8, 8, 10))), "must be cubic"),
        (lambda p: _write_raw(p, np.zeros((8, 8))), "3D"),
        (lambda p: _write_raw(p, np.full((8, 8, 8), np.nan)), "NaN/Inf"),
        (lambda p: _write_raw(p, np.zeros((8, 8, 8)), voxel_size=0.0), "voxel size"),
    ],
)
def test_bad_maps_give_one_line_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.mrc"
    make(path)
    with pytest.raises(InputError) as info:
        read_map(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_truncated_file_is_rejected(tmp_path, rng):
    path = tmp_path / "t.mrc"
    _write_raw(path, rng.standard_normal((16, 16, 16)))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="not a readable MRC"):
        read_map(path)


def test_voxel_size_override_and_mismatch(tmp_path):
    a, b = tmp_path / "a.mrc", tmp_path / "b.mrc"
    _write_raw(a, np.zeros((8, 8, 8)), voxel_size=0.0)
    _write_raw(b, np.zeros((8, 8, 8)), voxel_size=1.1)
    assert read_map(a, voxel_size=1.0).voxel_size == 1.0
    with pytest.raises(InputError, match="voxel size"):
        check_same_grid([read_map(a, voxel_size=1.0), read_map(b)])
    _write_raw(b, np.zeros((10, 10, 10)), voxel_size=1.0)
    with pytest.raises(InputError, match="shape"):
        check_same_grid([read_map(a, voxel_size=1.0), read_map(b)])


def test_mask_is_clipped_and_must_match(tmp_path):
    _write_raw(tmp_path / "m.mrc", np.linspace(-0.5, 1.5, 512).reshape(8, 8, 8))
    _write_raw(tmp_path / "h.mrc", np.zeros((8, 8, 8)))
    mask = read_mask(tmp_path / "m.mrc", read_map(tmp_path / "h.mrc"))
    assert mask.min() == 0.0 and mask.max() == 1.0
    _write_raw(tmp_path / "z.mrc", np.zeros((8, 8, 8)))
    with pytest.raises(InputError, match="empty"):
        read_mask(tmp_path / "z.mrc", read_map(tmp_path / "h.mrc"))


def test_atomic_write_leaves_nothing_when_writing_fails(tmp_path):
    target = tmp_path / "out.mrc"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_failed_map_write_keeps_previous_file(tmp_path, rng, monkeypatch):
    target = tmp_path / "out.mrc"
    write_map(target, np.ones((4, 4, 4)), 1.0)
    before = target.read_bytes()

    def broken_set_data(self, data):
        raise OSError("simulated failure while writing")

    monkeypatch.setattr(mrcfile.mrcfile.MrcFile, "set_data", broken_set_data)
    with pytest.raises(OSError):
        write_map(target, rng.standard_normal((4, 4, 4)), 1.0)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.mrc"]


def test_star_key_values_and_malformed(tmp_path):
    path = tmp_path / "a.star"
    path.write_text(
        "\ndata_general\n\n_rlnPixelSize 1.5\n_rlnName abc\n\n"
        "data_table\n\nloop_\n_rlnSpectralIndex #1\n_rlnValue #2\n0 1.0\n1 0.5\n"
    )
    blocks = read_star(path)
    general = key_values(blocks, "general", str(path))
    assert general["rlnPixelSize"] == 1.5 and general["rlnName"] == "abc"
    assert list(blocks["table"]["rlnValue"]) == [1.0, 0.5]
    with pytest.raises(InputError, match="data_missing"):
        key_values(blocks, "missing", str(path))
    with pytest.raises(InputError, match="not found"):
        read_star(tmp_path / "nope.star")
    bad = tmp_path / "bad.star"
    bad.write_bytes(b"\x00\x01 not a star file \xff")
    with pytest.raises(InputError, match="bad.star"):
        read_star(bad)


def test_output_set_commits_all_or_nothing(tmp_path):
    first, second = tmp_path / "a.mrc", tmp_path / "a_report.json"
    first.write_text("old a")
    with pytest.raises(OSError), output_set() as outputs:
        write_map(first, np.ones((4, 4, 4)), 1.0, outputs=outputs)
        assert first.read_text() == "old a"  # not renamed before the set is complete
        with outputs.stage(second) as tmp:
            tmp.write_text("{}")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mrc"]
    assert first.read_text() == "old a"
    with output_set() as outputs:
        write_map(first, np.ones((4, 4, 4)), 1.0, outputs=outputs)
        with outputs.stage(second) as tmp:
            tmp.write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mrc", "a_report.json"]
    assert read_map(first).data.shape == (4, 4, 4)
    assert oct(first.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_write_errors_name_the_output_not_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.mrc"

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(src))

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(OSError) as caught:
        write_map(target, np.ones((4, 4, 4)), 1.0)
    assert caught.value.errno == errno.EROFS and caught.value.filename == str(target)
    assert describe_failure(caught.value) == f"{target}: read-only file system"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_real_disk_full_error_is_one_line():
    with pytest.raises(OSError) as caught, open("/dev/full", "w") as handle:
        handle.write("x" * 100_000)
        handle.flush()
    assert caught.value.errno == errno.ENOSPC
    assert describe_failure(caught.value) == "no space left on the device (disk full)"
    assert describe_failure(MemoryError()).startswith("out of memory")


def test_constant_maps_are_rejected():
    good = MapData(np.arange(8, dtype=np.float32).reshape(2, 2, 2), 1.0, path="good.mrc")
    require_contrast([good])
    for value, words in ((0.0, "all zeros"), (2.0, "every voxel is 2")):
        flat = MapData(np.full((2, 2, 2), value, np.float32), 1.0, path="flat.mrc")
        with pytest.raises(InputError, match=f"flat.mrc: half-map is constant \\({words}"):
            require_contrast([good, flat])


def test_unreadable_input_names_the_problem(tmp_path, monkeypatch):
    good = write_map(tmp_path / "h1.mrc", np.ones((4, 4, 4)), 1.0)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(good))

    monkeypatch.setattr(mrcfile, "open", denied)
    with pytest.raises(InputError, match="h1.mrc: cannot read the half-map: permission denied"):
        read_map(good, what="half-map")
    monkeypatch.undo()
    with pytest.raises(InputError, match="is a folder, not a file"):
        read_map(tmp_path, what="half-map")
