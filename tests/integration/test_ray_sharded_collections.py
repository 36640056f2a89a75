"""`hybridsearch serve --data-dir DATA --ray local` as users run it, over a data directory
holding a plain and a sharded collection: the sharded ones run as Ray actors (one per shard),
every collection's shard group on the server's one private Ray, the plain one in the server
process. Both are searched through gRPC, an upsert is routed to the owning shards, an alias
moves between them, an empty sharded collection is created (its actors start) and the
imported one deleted (its actors stop, the others keep serving); SIGTERM leaves no process."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

pytest.importorskip("ray")

from hybridsearch.harness import descendants
from tests.conftest import start_server
from tests.integration.sharded_data_dir import (
    Client,
    create_sharded,
    delete_sharded,
    prepare,
    search_both_and_write,
)
from tests.integration.test_ray_serve_cli import alive


def replicas_of(pid: int) -> set[int]:
    return {p for p, cmd in descendants(pid).items() if "ShardReplica" in cmd and alive(p)}


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_serve_a_data_dir_with_sharded_collections_on_ray(
    tiny_hybrid_index: Path, model_dir: Path, tmp_path: Path
) -> None:
    data = prepare(tiny_hybrid_index, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    server = start_server(
        "--data-dir", str(data), "--ray", "local", "--model", str(model_dir),
        log_path=tmp_path / "server.log", env=env,
    )  # fmt: skip
    pid = server.process.pid
    try:
        server.wait_serving(timeout=240)
        imported = replicas_of(pid)
        assert len(imported) == 2, descendants(pid)  # 2 shards x 1 replica
        with grpc.insecure_channel(server.address) as channel:
            client = Client(channel)
            search_both_and_write(client, data)
            create_sharded(client, data, shards=2)
            created = replicas_of(pid) - imported
            assert len(created) == 2, descendants(pid)
            delete_sharded(client, data)
            wait_for(
                "the deleted collection's actors stop", lambda: not imported & replicas_of(pid)
            )
            assert replicas_of(pid) == created
        started = descendants(pid)
    finally:
        code = server.stop(timeout=60)
    assert code == 0, server.stderr_tail()
    wait_for("every process the server started stops", lambda: not any(map(alive, started)), 30)
