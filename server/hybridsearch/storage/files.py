"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process's umask: from /proc (reading it with os.umask would change it for a
    moment, under other threads creating files), else the usual 022."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def temp_file_beside(path: Path) -> tuple[int, str]:
    """``mkstemp`` beside ``path`` (same directory, so a rename replaces it atomically), with
    the permissions an ordinary new file gets (0666 less the umask): mkstemp's 0600 left
    manifests and vectors unreadable to a server running as another user."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def ordinary_permissions(path: Path) -> None:
    """Give a file another library wrote through its own temp file (tantivy's ``meta.json``)
    the permissions an ordinary new file gets (0666 less the umask), if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, 0o666 & ~_umask())


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
    fd, tmp = temp_file_beside(path)
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
