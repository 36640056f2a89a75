"""`hybridsearch serve --index SHARDED --ray local --replicas 2` as users run it: a subprocess
that starts a private local Ray of its own (another Ray on the machine is neither joined nor
disturbed), becomes SERVING, answers a hybrid search from the CLI with hits from both shards,
and on SIGTERM exits 0 with Ray stopped: no process it started (GCS, raylet, shard replicas)
is left behind. A Ray address nobody answers stops start-up with an error naming --ray."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from hybridsearch.harness import descendants
from hybridsearch.sharding.layout import shard_of
from tests.conftest import free_port, run_cli, start_server


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_serve_ray_local_from_the_cli(
    tiny_hybrid_index: Path, model_dir: Path, tmp_path: Path
) -> None:
    sharded = tmp_path / "tiny-2"
    split = run_cli(
        "shards", "split", "--from-index", str(tiny_hybrid_index), "--shards", "2",
        "--out", str(sharded),
    )  # fmt: skip
    assert "into 2 shards" in split.stdout
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    server = start_server(
        "--index", str(sharded), "--ray", "local", "--replicas", "2", "--model", str(model_dir),
        log_path=tmp_path / "server.log", env=env,
    )  # fmt: skip
    try:
        server.wait_serving(timeout=240)
        started = descendants(server.process.pid)
        assert any("raylet" in cmd for cmd in started.values()), "the server started Ray"
        replicas = [p for p, cmd in started.items() if "ShardReplica" in cmd]
        assert len(replicas) == 4, started  # 2 shards x 2 replicas

        health = run_cli("health", "--server", server.address)
        assert "SERVING" in health.stdout
        found = run_cli(
            "search", "--server", server.address, "--json", "--top-k", "12", "laminar flow"
        )
        ids = [hit["id"] for hit in json.loads(found.stdout)["hits"]]
        assert len(ids) == 12 and {shard_of(i, 2) for i in ids} == {0, 1}
    finally:
        code = server.stop(timeout=60)
    assert code == 0, server.stderr_tail()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(p) for p in started):
        time.sleep(0.5)
    left = {p: cmd[:80] for p, cmd in started.items() if alive(p)}
    assert left == {}, f"left running after SIGTERM: {left}"


def test_an_unreachable_ray_address_stops_start_up_naming_the_flag(
    tiny_hybrid_index: Path, tmp_path: Path
) -> None:
    sharded = tmp_path / "tiny-2"
    run_cli(
        "shards", "split", "--from-index", str(tiny_hybrid_index), "--shards", "2",
        "--out", str(sharded),
    )  # fmt: skip
    address = f"127.0.0.1:{free_port()}"
    done = run_cli("serve", "--index", str(sharded), "--ray", address, check=False, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"--ray {address}" in done.stderr and "no Ray head answers" in done.stderr
    assert "listening on" not in done.stdout
