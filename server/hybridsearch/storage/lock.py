"""The writer lock of an index directory: one writer process at a time, across generations.

tantivy locks its own directory, but compaction moves the data to a new directory, so the
lock that says "this process writes the index" is an ``flock`` on ``writer.lock`` in the index
directory itself. The kernel drops it when the process dies, even by SIGKILL.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from hybridsearch.errors import IndexLockedError

LOCK_FILE = "writer.lock"


class WriterLock:
    """An exclusive, non-blocking flock on ``<index>/writer.lock``; `release` to let go."""

    def __init__(self, index_dir: Path) -> None:
        self._fd: int | None = os.open(index_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise IndexLockedError(f"{index_dir} is being written by another process") from None

    def release(self) -> None:
        """Let another writer in (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
