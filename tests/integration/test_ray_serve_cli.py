"""`hybridsearch serve --index SHARDED --ray local --replicas 2` as users run it: a subprocess
that starts a private local Ray of its own (another Ray on the machine is neither joined nor
disturbed), becomes SERVING, answers a hybrid search from the CLI with hits from both shards,
and on SIGTERM exits 0 with Ray stopped: no process it started (GCS, raylet, shard replicas)
is left behind. A Ray address nobody answers stops start-up with an error naming --ray; so
does a plain or missing --index, before anything starts. SIGTERM while the replicas wait to
be placed stops the server. After a SIGKILL the next --ray local reaps every process of the
dead server's Ray, its agents included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from hybridsearch.harness import descendants
from hybridsearch.sharding.layout import shard_of
from hybridsearch.sharding.ray_runtime import PRIVATE_PREFIX, reap_stale_private_rays
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


def split_in_two(index: Path, out: Path) -> Path:
    run_cli("shards", "split", "--from-index", str(index), "--shards", "2", "--out", str(out))
    return out


def test_ray_with_a_plain_or_missing_index_is_refused_before_anything_starts(
    tiny_hybrid_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review4-docs D6, review4-ray #6: checked with the settings (exit 2, nothing bound,
    no Ray started), each case worded as it is (before: exit 1 after Ray had started)."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("HYBRIDSEARCH_RAY", "local")
    plain = run_cli("serve", "--index", str(tiny_hybrid_index), check=False, timeout=120)
    assert plain.returncode == 2, plain.stderr
    assert "--ray (env HYBRIDSEARCH_RAY)" in plain.stderr
    assert f"--index {tiny_hybrid_index} is not one" in plain.stderr
    missing = tmp_path / "missing"
    gone = run_cli("serve", "--index", str(missing), check=False, timeout=120)
    assert gone.returncode == 2, gone.stderr
    assert f"--index (env HYBRIDSEARCH_INDEX): {missing} does not exist" in gone.stderr
    for done in (plain, gone):
        assert "listening on" not in done.stdout and "Ray:" not in done.stderr


def test_sigterm_while_the_replicas_cannot_be_placed_stops_the_server(
    tiny_hybrid_index: Path, model_dir: Path, tmp_path: Path
) -> None:
    """review4-ray #3: 2 replicas each reserving every CPU of the one node: one is never
    placed. The wait says so in the log, and SIGTERM ends it (before: a wait for ever,
    and SIGTERM was not enough)."""
    from ray._private.utils import get_num_cpus  # the CPUs --ray local gets

    sharded = split_in_two(tiny_hybrid_index, tmp_path / "tiny-2")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    log_path = tmp_path / "server.log"
    server = start_server(
        "--index", str(sharded), "--ray", "local", "--replicas", "2",
        "--ray-replica-cpus", str(get_num_cpus()), "--model", str(model_dir),
        log_path=log_path, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while "have not started yet" not in log_path.read_text():
            assert server.process.poll() is None, server.stderr_tail()
            assert time.monotonic() < deadline, server.stderr_tail()
            time.sleep(0.5)
        text = log_path.read_text()
        assert "--ray-replica-cpus" in text and "--replicas" in text, text
        started = descendants(server.process.pid)
        stopping = time.monotonic()
        code = server.stop(timeout=60)
        took = time.monotonic() - stopping
    finally:
        server.stop(timeout=5)
    assert code == 0 and took < 40, (code, took, server.stderr_tail())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(p) for p in started):
        time.sleep(0.5)
    assert {p: c[:80] for p, c in started.items() if alive(p)} == {}


def test_the_next_ray_local_reaps_a_sigkilled_servers_ray_agents_included(
    tiny_hybrid_index: Path, model_dir: Path, tmp_path: Path
) -> None:
    """review4-ray #7: Ray's agents rename themselves (``ray::DashboardAgent``), so only
    their open files name the session directory; they are stopped too, and the directory
    is removed only then (before: they were left running, orphaned)."""
    sharded = split_in_two(tiny_hybrid_index, tmp_path / "tiny-2")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    server = start_server(
        "--index", str(sharded), "--ray", "local", "--model", str(model_dir),
        log_path=tmp_path / "server.log", env=env,
    )  # fmt: skip
    try:
        server.wait_serving(timeout=240)
        started = descendants(server.process.pid)
        assert any(cmd.startswith("ray::") for cmd in started.values()), started
        directories = {
            d for d in Path("/tmp").glob(f"{PRIVATE_PREFIX}*")
            if (d / "hybridsearch-owner.pid").read_text().strip() == str(server.process.pid)
        }  # fmt: skip
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
    finally:
        server.stop(timeout=5)
    try:
        assert len(directories) == 1
        assert set(reap_stale_private_rays()) >= directories
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in started):
            time.sleep(0.2)
        left = {p: cmd[:80] for p, cmd in started.items() if alive(p)}
        assert left == {}, f"left running after the reap: {left}"
        assert not any(d.exists() for d in directories)
    finally:
        for pid in started:  # never leave them behind, whatever happened
            if alive(pid):
                subprocess.run(["kill", "-9", str(pid)], check=False)
