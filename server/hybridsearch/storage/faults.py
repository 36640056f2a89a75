"""Failed writes → domain errors: a full disk is RESOURCE_EXHAUSTED, a broken one UNAVAILABLE.

Python raises `OSError` with an ``errno``; tantivy raises `ValueError` whose message holds
Rust's ``(os error N)`` or ``Os { code: N }``; faiss raises `RuntimeError` naming the C
library's text (``(No space left on device)``). All three are recognised. tantivy's "index
writer was killed" (its indexing thread died on an I/O error and the message lost the errno)
is read against the directory's free space when the caller names the directory: a disk with
less than `LOW_SPACE_BYTES` free is full, else the storage refused the write. Anything else is
not a storage fault and is left alone (it stays an internal error).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from hybridsearch.errors import HybridSearchError, StorageFullError, StorageUnavailableError

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
UNAVAILABLE_ERRNOS = frozenset({errno.EIO, errno.EACCES, errno.EPERM, errno.EROFS})
# Rust's io::Error as tantivy formats it: "... (os error 28)" or "Os { code: 28, ... }".
_RUST_OS_ERROR = re.compile(r"os error (\d+)|Os \{ code: (\d+)")
# The C library's text of a fault errno, as faiss quotes it: "... (No space left on device)".
_STRERROR = {os.strerror(n): n for n in sorted(FULL_ERRNOS | UNAVAILABLE_ERRNOS)}
# tantivy, when its indexing thread died (on an I/O error, most likely) without saying why.
WRITER_KILLED = "index writer was killed"
#: Free space under which a killed tantivy writer is read as a full disk.
LOW_SPACE_BYTES = 64 * 1024 * 1024


def fault_errno(exc: BaseException, directory: Path | None = None) -> int | None:
    """The errno of a storage fault behind ``exc`` (an OSError, a tantivy or a faiss error),
    if any; a killed tantivy writer's from the free space of ``directory`` (when given)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    if isinstance(exc, (ValueError, RuntimeError)):
        message = str(exc)
        match = _RUST_OS_ERROR.search(message)
        if match:
            return int(match.group(1) or match.group(2))
        for text, number in _STRERROR.items():
            if f"({text})" in message:
                return number
        if WRITER_KILLED in message and directory is not None:
            return errno.ENOSPC if free_bytes(directory) < LOW_SPACE_BYTES else errno.EIO
    return None


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on ``directory``'s filesystem (a large
    number when that cannot be read)."""
    try:
        stats = os.statvfs(directory)
    except OSError:
        return 1 << 62
    return stats.f_bavail * stats.f_frsize


def storage_error(
    exc: BaseException, action: str, directory: Path | None = None
) -> HybridSearchError | None:
    """The domain error for a failed ``action`` (e.g. "the commit") in ``directory``, or None
    when ``exc`` is not a disk-full or I/O fault. The message names the errno, never a path or
    a traceback."""
    number = fault_errno(exc, directory)
    if number is None:
        return None
    name = errno.errorcode.get(number, str(number))
    reason = f"{os.strerror(number)} ({name})"
    if number in FULL_ERRNOS:
        return StorageFullError(
            f"{action} failed: the index's disk is full: {reason}; nothing of it was "
            "committed; retry once space is freed"
        )
    if number in UNAVAILABLE_ERRNOS:
        return StorageUnavailableError(
            f"{action} failed: the index's storage refused the write: {reason}; nothing of it "
            "was committed; searches continue"
        )
    return None
