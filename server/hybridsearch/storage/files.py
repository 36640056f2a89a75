"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def fsync_file(path: Path) -> None:
    """Make a file's written contents durable."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old or the new file, whole."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as pretty JSON."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def dir_size_bytes(path: Path) -> int:
    """Total size of the regular files under ``path``, as it stands while it is counted.

    Commits and compactions delete files (tantivy's temporary and merged files, a compacted
    generation's old data directory) while this walks: a file or directory gone between its
    listing and its ``stat`` counts as absent, never as an error, so the total is
    approximate on a collection being written. Symbolic links to directories are not
    followed.
    """
    total = 0
    pending = [os.fspath(path)]
    while pending:
        try:
            listing = os.scandir(pending.pop())
        except (FileNotFoundError, NotADirectoryError):  # removed since it was listed
            continue
        with listing:
            for entry in listing:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file():
                        total += entry.stat().st_size
                except FileNotFoundError:  # deleted since it was listed
                    continue
    return total
