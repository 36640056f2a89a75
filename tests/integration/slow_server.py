"""A slow fake engine, and `python -m tests.integration.slow_server SERVE-FLAGS`: the real server
over it in a process of its own (for tests that signal the process).

Each engine call reports its first query text (the process prints ``started <text>`` on stdout,
after the ``listening on`` line) and then takes SLOW_ENGINE_DELAY_S seconds, so tests can tell
which calls reached the engine and keep calls in flight without sleeping themselves. With
SLOW_ENGINE_LOAD=forever the process prints ``loading`` and its load never ends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from hybridsearch.api.server import serve
from hybridsearch.config import ServerSettings, add_settings_arguments, settings_from
from hybridsearch.storage.manifest import Manifest
from hybridsearch.types import Query, SearchResult, StageTimings


def _print_started(text: str) -> None:
    print(f"started {text}", flush=True)


class SlowEngine:
    """Quacks like HybridSearcher: no hits, fixed delay, reports each call to ``report``."""

    def __init__(self, delay_s: float, report: Callable[[str], object] = _print_started) -> None:
        self.delay_s = delay_s
        self._report = report
        self.dense_arm = None  # no query encoder: the metrics' batcher counters read nothing
        # What a server reads of its engine's index: counts, and the manifest it describes.
        self.index = SimpleNamespace(
            sparse=SimpleNamespace(num_docs=0),
            manifest=Manifest(document_count=0, ordinal_count=0, created_at="2026-12-01T00:00:00Z"),
            size_bytes=0,
        )

    def search(self, query: Query) -> SearchResult:
        return self.search_batch([query])[0]

    def search_batch(self, queries: Sequence[Query]) -> list[SearchResult]:
        self._report(queries[0].text)
        time.sleep(self.delay_s)
        timings = StageTimings(total_us=int(self.delay_s * 1e6), sparse_us=1)
        return [SearchResult(hits=[], timings=timings, applied=q) for q in queries]

    def close(self) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    settings = settings_from(parser.parse_args())
    delay_s = float(os.environ.get("SLOW_ENGINE_DELAY_S", "1.0"))

    def factory(_: ServerSettings) -> Any:
        if os.environ.get("SLOW_ENGINE_LOAD") == "forever":
            print("loading", flush=True)
            threading.Event().wait()  # a load that never ends (a stuck disk, a hung Ray)
        return SlowEngine(delay_s)

    return asyncio.run(serve(settings, factory))


if __name__ == "__main__":
    sys.exit(main())
