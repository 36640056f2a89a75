"""A serving process raises the collector's first threshold (see hybridsearch.serving_gc)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

import hybridsearch.api.server
from hybridsearch.cli import serve as serve_cli
from hybridsearch.config import ServerSettings
from hybridsearch.serving_gc import SERVING_GEN0_THRESHOLD, tune_collector_for_serving


@pytest.fixture(autouse=True)
def restored_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_only_the_first_threshold_changes() -> None:
    gc.set_threshold(700, 11, 12)
    tune_collector_for_serving()
    assert gc.get_threshold() == (SERVING_GEN0_THRESHOLD, 11, 12)


def test_a_serving_process_sets_it_before_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    async def fake_serve(settings: ServerSettings, *args: Any, **kwargs: Any) -> int:
        seen.append(gc.get_threshold()[0])  # what the server would run with
        return 0

    monkeypatch.setattr(hybridsearch.api.server, "serve", fake_serve)
    assert serve_cli._serve_process(ServerSettings(), None) == 0
    assert seen == [SERVING_GEN0_THRESHOLD]
