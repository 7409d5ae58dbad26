"""The atomic writers leave the old file or the new one, never half of one."""

from __future__ import annotations

import pytest

from allconv_zoo.files import atomic_copy, atomic_path, atomic_write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_writes_and_copies_replace_the_target_and_create_its_folder(tmp_path):
    target = tmp_path / "deep" / "card" / "README.md"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    copy = tmp_path / "other" / "README.md"
    atomic_copy(target, copy)
    assert copy.read_text() == "second"
    atomic_copy(copy, copy)  # onto itself: nothing to do, nothing lost
    assert copy.read_text() == "second"
    assert sorted(p.name for p in copy.parent.iterdir()) == ["README.md"]


def test_written_files_get_the_usual_mode_not_mkstemps_private_one(tmp_path):
    import os

    target = tmp_path / "config.json"
    atomic_write_text(target, "{}")
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert os.access(target, os.R_OK)
