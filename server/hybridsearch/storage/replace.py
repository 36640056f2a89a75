"""Putting a freshly built directory at a path, in place of what was there, safely.

A build writes into a staging directory beside its target, ``.<name>.building-<pid>`` (a
sharded build: ``.<name>.building-shards-<pid>``), and `swap_into_place` renames it to the
target. Replacing an existing target takes two renames, ``<name>`` → ``.<name>.old-<pid>``
then staging → ``<name>``, and the old copy is removed after them.

Two processes must never meet here:

- A writer serving the target (`IndexWriter`, a data directory's server) holds the flock on
  its ``writer.lock`` (`WriterLock`); a sharded collection's writers each hold their shard's.
  A swap that replaces the target takes those locks first and holds them until the old
  copy is removed; when another process holds it, the swap is refused with
  `IndexLockedError` (replacing a directory under its writer would send the writer's next
  commit into the new index).
- Each staging directory's ``writer.lock`` is held by the build writing it, from its creation
  to the swap. So a leftover directory whose lock can be taken belongs to a process that died.

What is at the target is checked twice: when the build starts (so that it fails before the
work) and again at the swap, because the target can change during a build of minutes (another
build finishing first, a directory made by hand). A build that was not told to replace
(`StagingDir` ``may_replace`` False) fails at the swap when the target now exists (and its
rename fails by itself when the target appears just before it: rename(2) does not replace a
file or a non-empty directory). One that was (``--force``) fails unless the target is still an
index, a sharded collection or an empty directory (`check_replaceable`), checked before its
locks are taken and again under them. Either way nothing at the target is touched (not even a
lock file is made in it) and the build removes its staging directory.

A crash leaves at most a staging directory and an old copy beside the target.
`recover_replacement` (run before every build of the target, and when an index is opened at
a path that does not exist) puts an old copy whose owner died back at the target when the
target is missing, which is the state between the two renames, and deletes every other dead
leftover. So after a crash the path holds the old index or the new one, never nothing, once
either a build or an open has run.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
import shutil
from pathlib import Path

from hybridsearch.errors import BuildError, IndexLockedError
from hybridsearch.storage.files import fsync_dir
from hybridsearch.storage.lock import LOCK_FILE, WriterLock

log = logging.getLogger(__name__)

BUILDING = "building"
BUILDING_SHARDS = "building-shards"
OLD = "old"


def leftover_path(out: Path, kind: str) -> Path:
    """This process's staging (``kind`` `BUILDING`, `BUILDING_SHARDS`) or old copy of ``out``."""
    return out.parent / f".{out.name}.{kind}-{os.getpid()}"


class StagingDir:
    """A staging directory for a build of ``out``, locked as this process's until `release`.

    ``may_replace``: whether the swap may replace what is at ``out`` then (``--force``); when
    False, the swap fails if anything is there.
    """

    def __init__(self, out: Path, kind: str = BUILDING, *, may_replace: bool = False) -> None:
        self.path = leftover_path(out, kind)
        self.may_replace = may_replace
        shutil.rmtree(self.path, ignore_errors=True)  # this pid's own earlier attempt
        self.path.mkdir(parents=True)
        self._lock = WriterLock(self.path)

    def release(self) -> None:
        """Let go of the directory (after it was swapped into place or removed)."""
        self._lock.release()

    def remove(self) -> None:
        """Delete the directory (the build failed), then let go of it."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()


def check_not_served(out: Path) -> None:
    """Raise `IndexLockedError` when a writer holds ``out`` or one of its shards (checked
    before a long build, so that it fails at once; the swap checks again and holds the
    locks)."""
    for lock in _lock_target(out):
        lock.release()


def check_replaceable(out: Path) -> None:
    """Raise `BuildError` unless ``out`` is what ``--force`` may replace: an index directory
    (``manifest.json``), a sharded collection (``shards.json``) or an empty directory (a
    ``writer.lock`` aside: checking that no writer holds it leaves one). A slip such as
    ``--out ~`` must not delete a home directory."""
    # (storage.manifest imports this module for its recovery: its names are imported here.)
    from hybridsearch.storage.manifest import MANIFEST_FILE, SHARD_MANIFEST_FILE  # noqa: PLC0415

    if out.is_symlink():  # the swap would replace the link, not what it points to
        raise BuildError(
            f"{out} is a symbolic link; give the directory it points to ({out.resolve()})"
        )
    if out.is_dir():
        if (out / MANIFEST_FILE).is_file() or (out / SHARD_MANIFEST_FILE).is_file():
            return
        if {entry.name for entry in itertools.islice(out.iterdir(), 2)} <= {LOCK_FILE}:
            return
    raise BuildError(
        f"{out} exists and is not a hybridsearch index (no {MANIFEST_FILE} or "
        f"{SHARD_MANIFEST_FILE}); not replacing it"
    )


def swap_into_place(staging: StagingDir, out: Path) -> None:
    """Rename ``staging`` to ``out``, replacing (and then removing) a directory there when
    ``staging.may_replace``.

    Raises (nothing at ``out`` changed; the caller removes ``staging``): `IndexLockedError`
    when another process writes ``out``; `BuildError` when something appeared at ``out``
    during a build that may not replace it, or when what is there is no longer replaceable.
    """
    if not staging.may_replace:
        if os.path.lexists(out):
            raise _appeared(out, staging)
        _rename_to_absent(staging, out)
        fsync_dir(out.parent)
        staging.release()
        return
    if os.path.lexists(out):
        check_replaceable(out)  # first: taking its locks would put a writer.lock in it
    target_locks = _lock_target(out)
    try:
        old = leftover_path(out, OLD)
        if os.path.lexists(out):
            check_replaceable(out)  # again, now that no writer can change it
            # The old copy keeps its (held) writer.lock: a recovery leaves it alone until the
            # lock is let go, which is after the old copy is removed.
            os.replace(out, old)
        _rename_to_absent(staging, out)
        fsync_dir(out.parent)
        staging.release()
        shutil.rmtree(old, ignore_errors=True)
    finally:
        for lock in target_locks:
            lock.release()


def _rename_to_absent(staging: StagingDir, out: Path) -> None:
    """Rename ``staging`` to ``out``, which was checked absent. rename(2) fails by itself when
    a file or a non-empty directory appeared there since (it would only replace an empty
    directory, which loses nothing): that is `BuildError`, and nothing at ``out`` changed."""
    try:
        os.rename(staging.path, out)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise _appeared(out, staging) from exc
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY:
            raise
        raise _appeared(out, staging) from exc


def _appeared(out: Path, staging: StagingDir) -> BuildError:
    """The error of a build whose target appeared while it ran."""
    hint = "" if staging.may_replace else " (use --force to replace an index)"
    return BuildError(
        f"{out} appeared while this build ran (another build's output?); not replacing it, "
        f"and this build is discarded{hint}"
    )


def _lock_target(out: Path) -> list[WriterLock]:
    """The writer locks of ``out`` and of each directory in it that has one (the shards of
    a sharded collection, each written by its own writer), all taken, or none."""
    if not out.is_dir():
        return []
    shards = sorted(d for d in out.iterdir() if d.is_dir() and (d / LOCK_FILE).is_file())
    dirs = [out, *shards]
    locks: list[WriterLock] = []
    try:
        for path in dirs:
            locks.append(WriterLock(path))
    except IndexLockedError:
        for lock in locks:
            lock.release()
        raise IndexLockedError(
            f"{out} is being written by another process (a server?): stop it before "
            "replacing the index with --force"
        ) from None
    return locks


_LEFTOVER = re.compile(rf"\.(?P<name>.+)\.(?P<kind>{BUILDING_SHARDS}|{BUILDING}|{OLD})-\d+")


def recover_replacement(out: Path) -> list[str]:
    """Undo what crashed replacements of ``out`` left beside it; returns the names handled.

    A leftover whose ``writer.lock`` is held belongs to a running build (or a writer) and is
    left alone. Of the others, an old copy is renamed back to ``out`` when ``out`` is missing;
    everything else is deleted.
    """
    parent = out.parent
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    leftovers = []
    for entry in entries:
        match = _LEFTOVER.fullmatch(entry.name)
        if match and match["name"] == out.name and entry.is_dir() and not entry.is_symlink():
            leftovers.append((match["kind"] != OLD, entry))  # old copies first
    handled = []
    for _, entry in sorted(leftovers):
        # (A staging directory is locked just after its mkdir: a recovery running in between
        # could delete a live build's directory. That needs two builds of one target at once,
        # which the swap refuses anyway; the loser fails, the index is untouched.)
        try:
            lock = WriterLock(entry)
        except (IndexLockedError, OSError):  # running, already handled, or not ours to touch
            continue
        try:
            if entry.name.startswith(f".{out.name}.{OLD}-") and not os.path.lexists(out):
                os.replace(entry, out)
                fsync_dir(parent)
                log.warning("%s: restored the index an interrupted build had moved aside", out)
            else:
                shutil.rmtree(entry, ignore_errors=True)
                log.info("%s: removed %s, left by an interrupted build", out, entry.name)
            handled.append(entry.name)
        finally:
            lock.release()
    return handled
