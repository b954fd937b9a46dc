"""Atomic writes and the size-limited text reader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.files import read_text, write_atomic


def test_write_atomic_replaces_the_file_whole(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("signed content")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "half")
    assert target.read_text() == "signed content"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_write_atomic_creates_missing_folders(tmp_path):
    write_atomic(tmp_path / "a" / "b" / "c.md", "x")
    assert (tmp_path / "a" / "b" / "c.md").read_text() == "x"


def test_read_text_limits_and_errors(tmp_path):
    small = tmp_path / "s.yaml"
    small.write_bytes(b"\xef\xbb\xbfid: x\n")
    assert read_text(small, limit=100, kind="a YAML file") == "id: x\n"
    with pytest.raises(InputError, match="file too large: 9 bytes, at most 5"):
        read_text(small, limit=5, kind="a YAML file")
    bad = tmp_path / "b.yaml"
    bad.write_bytes(b"ok\nok\n\xff\n")
    with pytest.raises(InputError, match=r"b.yaml:3: not UTF-8 text \(byte 6\)"):
        read_text(bad, limit=100, kind="a YAML file")
    with pytest.raises(InputError, match="expected a YAML file, found a folder"):
        read_text(tmp_path, limit=100, kind="a YAML file")
    with pytest.raises(InputError, match="file not found"):
        read_text(tmp_path / "none.yaml", limit=100, kind="a YAML file")


def test_a_device_is_read_up_to_the_limit_and_refused(tmp_path):
    # /dev/zero has no size and no end: it is read only as far as the limit allows
    with pytest.raises(InputError, match="file too large: more than 100 bytes"):
        read_text(Path("/dev/zero"), limit=100, kind="a YAML file")


def test_a_file_is_read_whole_up_to_exactly_the_limit(tmp_path):
    exact = tmp_path / "e.yaml"
    exact.write_bytes(b"a" * 100)
    assert read_text(exact, limit=100, kind="a YAML file") == "a" * 100
    with pytest.raises(InputError, match="file too large: 101 bytes, at most 100"):
        exact.write_bytes(b"a" * 101)
        read_text(exact, limit=100, kind="a YAML file")
