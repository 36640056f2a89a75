"""Live followers: a read-only server picks up each commit of another writer without a restart.

Every ``interval_s`` the follower reads the index's manifest (the commit point); when its
generation is newer than the served one, it opens exactly the state that manifest names
(`open_index`: the manifest is re-read after the data files are opened, so a commit or a
compaction landing meanwhile makes it open again, never serve a mix) and publishes it to the
searcher. Searches in flight keep their snapshot. A commit that is half-written (a writer
killed mid-commit) is invisible: its manifest was never replaced, and the follower keeps
serving the last complete generation. When opening fails (the data was replaced by a
compaction, a disk error), it keeps serving and tries again at the next tick.

A copy of the directory kept in sync by rsync (or object storage) can be followed too, but
only if the manifest is copied last and atomically (rsync writes each file to a temporary
name and renames it; copy the data first, then ``manifest.json`` in a second pass): a reader
trusts everything the manifest names, so a manifest that arrives before its data is a
half-applied commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.storage.index_dir import open_index
from hybridsearch.storage.manifest import load_manifest

log = logging.getLogger(__name__)


class Poller:
    """Runs ``step`` every ``interval_s`` seconds on its own thread until `close`. A failing
    step is logged once per distinct problem ("following <what>: ...; still serving the last
    state") and tried again at the next tick: what is served stays as it was."""

    def __init__(
        self, what: str, step: Callable[[], object], interval_s: float, *, thread_name: str
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"the follow interval must be positive, got {interval_s}")
        self._what = what
        self._step = step
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._last_problem = ""
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._step()
                self._last_problem = ""
            except Exception as exc:  # keep serving what is served; say so once per problem
                problem = f"{type(exc).__name__}: {exc}"
                if problem != self._last_problem:
                    log.warning("following %s: %s; still serving the last state", self._what, exc)
                    self._last_problem = problem

    def close(self) -> None:
        """Stop polling (after the step in progress, if any)."""
        self._stop.set()
        self._thread.join()


class Follower:
    """Polls ``path`` every ``interval_s`` seconds and publishes new commits to ``searcher``."""

    def __init__(self, path: Path, searcher: HybridSearcher, interval_s: float) -> None:
        self.path = path
        self._searcher = searcher
        self._poller = Poller(str(path), self.check, interval_s, thread_name="follower")

    def check(self) -> bool:
        """Publish the latest commit if it is newer than the served one; whether it did."""
        served = self._searcher.index.manifest.generation
        if load_manifest(self.path).generation <= served:
            return False
        index = open_index(self.path)
        self._searcher.publish_index(index)
        log.info(
            "following %s: now serving generation %d (%d documents)",
            self.path,
            index.manifest.generation,
            index.manifest.document_count,
        )
        return True

    def close(self) -> None:
        """Stop polling."""
        self._poller.close()
