"""Writes that leave either the old file or the new one, never half of one.

Every file the package writes for later use (run folders, checkpoints, staged Hub repos,
figures, tables) goes through ``atomic_path``: the content is written to a temporary file in the
target's own folder and renamed over the target, which ``os.replace`` does atomically on one
file system. A run killed mid-write thus never leaves a truncated file that a resume or a
publish would trip over.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_copy", "atomic_path", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was. ``suffix``
    matters to writers that pick a format from the name (matplotlib's ``savefig``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    try:
        yield Path(temporary)
        # mkstemp makes the file private (0600); give it the mode an open() would have.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _umask() -> int:
    # The process umask can only be read by setting it; set it straight back.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def atomic_copy(source: str | Path, target: str | Path) -> None:
    """Copy ``source`` onto ``target`` atomically; copying a file onto itself does nothing."""
    source, target = Path(source), Path(target)
    if target.exists() and source.resolve() == target.resolve():
        return
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)
