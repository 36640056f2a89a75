"""The RayService application (`hybridsearch.sharding.ray_service`) on a real local Ray and
Serve: the Serve replica starts the gRPC front from its environment, reports healthy while it
runs, and takes it down with it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import grpc
import pytest

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

from hybridsearch.harness import free_port, wait_serving  # noqa: E402
from hybridsearch.sharding.ray_service import FRONT, STOP_MARGIN_S, stop_timeout_s  # noqa: E402
from tests.conftest import run_cli  # noqa: E402


def _wait_up(address: str, timeout: float = 120) -> None:
    """Until the front (started by the Serve replica, not by us) accepts and is SERVING."""
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    wait_serving(address, timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_front_gets_its_shutdown_delay_and_grace_period_to_stop() -> None:
    assert stop_timeout_s({}) == 10.0 + STOP_MARGIN_S  # the defaults: no delay, 10 s grace
    env = {"HYBRIDSEARCH_SHUTDOWN_DELAY_S": "20", "HYBRIDSEARCH_GRACE_PERIOD_S": "30"}
    assert stop_timeout_s(env) == 50.0 + STOP_MARGIN_S
    # Values the front refuses to start with count as their defaults here.
    for bad in ("nan", "-1", "inf", "1e9", "soon"):
        env = {"HYBRIDSEARCH_SHUTDOWN_DELAY_S": bad, "HYBRIDSEARCH_GRACE_PERIOD_S": "30"}
        expected = 30.0 if bad != "soon" else 10.0  # a value that does not parse: all defaults
        assert stop_timeout_s(env) == expected + STOP_MARGIN_S, bad


def test_serve_runs_watches_and_stops_the_front(tiny_sparse_index: Path) -> None:
    port = free_port()
    env = {
        "HYBRIDSEARCH_INDEX": str(tiny_sparse_index),
        "HYBRIDSEARCH_HOST": "127.0.0.1",
        "HYBRIDSEARCH_PORT": str(port),
    }
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        options = {"num_cpus": 0, "runtime_env": {"env_vars": env}}
        handle = serve.run(FRONT.options(ray_actor_options=options).bind(), name="hs")
        address = f"127.0.0.1:{port}"
        _wait_up(address)
        hits = run_cli("search", "flow", "--mode", "sparse", "--server", address, "--json")
        assert '"hits"' in hits.stdout
        pid = handle.front_pid.remote().result(timeout_s=30)
        assert _alive(pid)
        os.kill(pid, signal.SIGKILL)  # the front dies: Serve sees it and starts another
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                new_pid = handle.front_pid.remote().result(timeout_s=10)
            except Exception:  # the unhealthy replica is being replaced
                new_pid = pid
            if new_pid != pid:
                break
            time.sleep(1)
        assert new_pid != pid, "Serve did not replace the replica of a dead front"
        _wait_up(address)
        serve.delete("hs")
        deadline = time.monotonic() + 60
        while _alive(new_pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _alive(new_pid), "the front outlived its Serve replica"
    finally:
        serve.shutdown()
        ray.shutdown()
