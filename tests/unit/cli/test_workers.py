"""`serve_workers`: a worker's start-up refusal reaches the operator (forks this process)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import pytest

from hybridsearch.cli.workers import serve_workers
from hybridsearch.config import ServerSettings
from hybridsearch.errors import SettingsError


@pytest.fixture(autouse=True)
def _keep_signal_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _refuses(_settings: ServerSettings, _announce: Callable[[str], None]) -> int:
    raise SettingsError("--tls-cert (env HYBRIDSEARCH_TLS_CERT): changed under us")


def _crashes(_settings: ServerSettings, _announce: Callable[[str], None]) -> int:
    raise RuntimeError("a bug")


def test_a_worker_that_refuses_to_start_prints_why_and_the_parent_exits_2(
    capfd: pytest.CaptureFixture[str],
) -> None:
    code = serve_workers(ServerSettings(host="127.0.0.1", port=0, workers=2), _refuses)
    err = capfd.readouterr().err
    assert code == 2
    assert err.count("error: --tls-cert (env HYBRIDSEARCH_TLS_CERT): changed under us\n") == 2
    assert "failed to" not in err


def test_a_worker_that_crashes_prints_its_traceback_and_the_parent_exits_1(
    capfd: pytest.CaptureFixture[str],
) -> None:
    code = serve_workers(ServerSettings(host="127.0.0.1", port=0, workers=2), _crashes)
    err = capfd.readouterr().err
    assert code == 1
    assert err.count("RuntimeError: a bug") == 2
    assert err.endswith("error: 2 worker(s) failed to start\n")
