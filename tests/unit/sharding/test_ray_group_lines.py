"""`RayShardGroup`'s retry and deadline code over real direct lines: each replica is a
`ReplicaListener` in a process of its own (killed, restarted on a new port or frozen with
SIGSTOP as a test needs). Only Ray's part is stood in for: the module's ``ray.get`` answers
what Ray would (where a replica listens now, whether it writes), so no Ray is started (the
same code on a real Ray: tests/integration/test_ray_serving.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import GetTimeoutError

from hybridsearch.errors import DeadlineExceededError, UnavailableError
from hybridsearch.sharding import ray_group
from hybridsearch.sharding.group import request_deadline
from hybridsearch.sharding.ray_group import RayShardGroup, _Shard
from hybridsearch.sharding.replica_line import Address, new_key

KEY = new_key()

#: A stand-in replica: the project's listener, answering `pid`, `sleep` and `apply` (which
#: notes the call in a file, then the process dies before it answers when told to).
REPLICA = """
import os, sys, time
from hybridsearch.sharding.replica_line import ReplicaListener

def answer(method, args):
    if method == "pid":
        return os.getpid()
    if method == "sleep":
        time.sleep(args[0])
        return os.getpid()
    if method == "apply":
        with open(args[0], "a") as out:
            out.write("applied\\n")
        if args[1]:
            os._exit(1)
        return os.getpid()
    raise AttributeError(method)

listener = ReplicaListener("127.0.0.1", bytes.fromhex(sys.argv[1]), answer)
print(listener.address[1], flush=True)
sys.stdin.read()
"""


class Replica:
    """One replica's process, and the handle the group holds: ``address.remote()`` and
    ``run.remote("stats")`` give what the stand-in ``ray.get`` answers."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.restarting = False
        self.address = types.SimpleNamespace(remote=lambda: self._where)
        self.run = types.SimpleNamespace(remote=lambda method: self._stats)

    def start(self) -> Replica:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", REPLICA, KEY.hex()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def freeze(self) -> None:
        """SIGSTOP: a hung process, or a node cut off (no FIN, no RST comes back)."""
        os.kill(self.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{self.pid}/stat").read_text().split()[2] != "T":
            assert time.monotonic() < deadline, "the replica did not stop"
            time.sleep(0.01)

    def restart(self) -> None:
        """As Ray restarts a dead actor: a new process, on a port of its own."""
        self.kill()
        self.start()

    def _where(self, timeout: float | None) -> Address:
        if self.restarting:
            time.sleep(timeout or 0.0)
            raise GetTimeoutError
        return ("127.0.0.1", self.port)

    def _stats(self, timeout: float | None) -> Any:
        if self.restarting:  # Ray holds a restarting actor's calls
            time.sleep(timeout or 0.0)
            raise GetTimeoutError
        return types.SimpleNamespace(writable=True)


def _get(ref: Callable[[float | None], Any], timeout: float | None = None) -> Any:
    return ref(timeout)


@pytest.fixture
def replicas(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], list[Replica]]]:
    monkeypatch.setattr(ray_group, "ray", types.SimpleNamespace(get=_get))
    started: list[Replica] = []

    def start(count: int) -> list[Replica]:
        new = [Replica().start() for _ in range(count)]
        started.extend(new)
        return new

    yield start
    for group in GROUPS:
        for line in group._shards[0].lines:
            line.reset()
    GROUPS.clear()
    for replica in started:
        replica.kill()


GROUPS: list[RayShardGroup] = []


def group_of(replicas: list[Replica], call_timeout_s: float = 5.0) -> RayShardGroup:
    """A group of one shard over ``replicas``, as `RayShardGroup.__init__` leaves it once
    the actors are up (the first one writes)."""
    group = RayShardGroup.__new__(RayShardGroup)
    group._call_timeout_s = call_timeout_s
    group._runtime = None
    group._direct = True
    shard = _Shard(replicas, KEY)
    for line, replica in zip(shard.lines, replicas, strict=True):
        line.address = ("127.0.0.1", replica.port)
    shard.writer = 0
    group._shards = [shard]
    GROUPS.append(group)
    return group


def within(seconds: float, fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` with a request deadline of ``seconds``, and how long it took."""
    token = request_deadline.set(time.monotonic() + seconds)
    started = time.monotonic()
    try:
        return fn(), time.monotonic() - started
    finally:
        request_deadline.reset(token)


def test_a_restarted_only_replica_answers_the_next_read(
    replicas: Callable[[int], list[Replica]],
) -> None:
    (replica,) = replicas(1)
    group = group_of([replica])
    assert group.call(0, "pid") == replica.pid  # its line now holds an idle connection
    replica.restart()
    assert group.call(0, "pid") == replica.pid
    replica.restart()
    fan = group.fan_out("pid", lambda s: (), allow_partial=True)
    assert fan.results == {0: replica.pid} and fan.missing == ()


def test_a_replica_restarting_is_missing_and_then_answers_by_itself(
    replicas: Callable[[int], list[Replica]],
) -> None:
    (replica,) = replicas(1)
    group = group_of([replica])
    assert group.call(0, "pid") == replica.pid
    replica.kill()
    replica.restarting = True  # Ray holds the question where it listens
    fan, took = within(5.0, lambda: group.fan_out("pid", lambda s: (), allow_partial=True))
    assert fan.missing == (0,) and took < ray_group.ADDRESS_TIMEOUT_S + 1.0
    replica.start()
    replica.restarting = False
    assert group.call(0, "pid") == replica.pid


def test_a_write_is_sent_again_only_when_it_was_not_sent(
    replicas: Callable[[int], list[Replica]], tmp_path: Path
) -> None:
    (replica,) = replicas(1)
    group = group_of([replica])
    notes = tmp_path / "applied"
    assert group.write(0, "apply", str(notes), False) == replica.pid
    replica.restart()  # the pooled connection is closed: the write goes on a new one
    assert group.write(0, "apply", str(notes), False) == replica.pid
    assert notes.read_text().count("applied") == 2
    # The replica dies once it has the write: it may have been applied, it is not resent.
    with pytest.raises(UnavailableError, match="may have been applied"):
        group.write(0, "apply", str(notes), True)
    assert notes.read_text().count("applied") == 3


def test_a_hung_replica_is_failed_over_within_the_deadline(
    replicas: Callable[[int], list[Replica]],
) -> None:
    frozen, healthy = replicas(2)
    group = group_of([frozen, healthy])
    assert {group.call(0, "pid") for _ in range(2)} == {frozen.pid, healthy.pid}
    frozen.freeze()
    for _ in range(4):
        answer, took = within(2.0, lambda: group.call(0, "pid"))
        assert answer == healthy.pid and took < 1.5
    assert group._shards[0].down_until[0] > 0.0  # marked down: asked last for a while
    fan, took = within(2.0, lambda: group.fan_out("pid", lambda s: (), allow_partial=False))
    assert fan.results == {0: healthy.pid}


def test_a_slow_replica_past_its_share_still_answers_within_the_deadline(
    replicas: Callable[[int], list[Replica]],
) -> None:
    both = replicas(2)
    group = group_of(both)
    # Each attempt's share is 1 s of the 2: the first replica, still awaited, answers at
    # 1.3 s, before the one also asked at 1 s would.
    answer, took = within(2.0, lambda: group.call(0, "sleep", 1.3))
    assert answer in {r.pid for r in both} and 1.2 < took < 1.9


def test_a_hung_writer_is_not_written_to_elsewhere(
    replicas: Callable[[int], list[Replica]], tmp_path: Path
) -> None:
    writer, follower = replicas(2)
    group = group_of([writer, follower])
    notes = tmp_path / "applied"
    writer.freeze()
    with pytest.raises(DeadlineExceededError):
        within(1.0, lambda: group.write(0, "apply", str(notes), False))
    assert not notes.exists()


def test_finding_the_writer_keeps_to_the_deadline(
    replicas: Callable[[int], list[Replica]],
) -> None:
    writer, follower = replicas(2)
    group = group_of([writer, follower])
    group._shards[0].writer = None
    writer.restarting = follower.restarting = True  # Ray holds both replicas' calls
    started = time.monotonic()
    with pytest.raises(UnavailableError, match="no writer"):
        within(0.5, lambda: group.write(0, "pid"))
    assert time.monotonic() - started < 1.0  # each replica was asked for 5 s: 10 s
