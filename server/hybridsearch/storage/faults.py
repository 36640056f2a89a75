"""Failed writes → domain errors: a full disk is RESOURCE_EXHAUSTED, a broken one UNAVAILABLE.

Python raises `OSError` with an ``errno``; tantivy raises `ValueError` whose message holds
Rust's ``(os error N)`` or ``Os { code: N }``. Both are recognised; anything else is not a
storage fault and is left alone (it stays an internal error).
"""

from __future__ import annotations

import errno
import os
import re

from hybridsearch.errors import HybridSearchError, StorageFullError, StorageUnavailableError

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
UNAVAILABLE_ERRNOS = frozenset({errno.EIO, errno.EACCES, errno.EPERM, errno.EROFS})
# Rust's io::Error as tantivy formats it: "... (os error 28)" or "Os { code: 28, ... }".
_RUST_OS_ERROR = re.compile(r"os error (\d+)|Os \{ code: (\d+)")


def fault_errno(exc: BaseException) -> int | None:
    """The errno of a storage fault behind ``exc`` (an OSError or a tantivy error), if any."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    if isinstance(exc, (ValueError, RuntimeError)):
        match = _RUST_OS_ERROR.search(str(exc))
        if match:
            return int(match.group(1) or match.group(2))
    return None


def storage_error(exc: BaseException, action: str) -> HybridSearchError | None:
    """The domain error for a failed ``action`` (e.g. "the commit"), or None when ``exc`` is
    not a disk-full or I/O fault. The message names the errno, never a path or a traceback."""
    number = fault_errno(exc)
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
