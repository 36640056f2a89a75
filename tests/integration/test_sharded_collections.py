"""A data directory holding a plain and a sharded collection, served without Ray (every
shard in the server's process) by the real `serve --data-dir` loader and the default model:
both searched through gRPC with the same hits, an upsert routed to the owning shards, an
alias moved between them, an empty sharded collection created and filled, the sharded one
deleted. Ray is never imported: the test runs as if it were not installed (the default
install has none)."""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
import pytest

from hybridsearch.config import ServerSettings
from hybridsearch.engine.data_dir import load_serving
from tests.integration.in_process import in_process_server
from tests.integration.sharded_data_dir import (
    Client,
    create_sharded,
    delete_sharded,
    prepare,
    search_both_and_write,
)


def test_a_data_dir_serves_sharded_collections_in_process(
    tiny_hybrid_index: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = prepare(tiny_hybrid_index, tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as without the extra
    settings = ServerSettings(port=0, data_dir=data, model=model_dir)
    with (
        in_process_server(settings, load_serving) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        client = Client(channel)
        search_both_and_write(client, data)
        create_sharded(client, data, shards=3)
        delete_sharded(client, data)
    # Reopened: what was created and deleted is as it was left.
    with (
        in_process_server(settings, load_serving) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        assert Client(channel).listing() == {"fresh": (3, 4), "plain": (0, 12)}
