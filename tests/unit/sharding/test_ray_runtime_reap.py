"""A private local Ray (``--ray local``) whose owner was SIGKILLed: the next one stops what is
left of it (its agents ignore SIGTERM and outlive the raylet) and removes its directory; a
live owner's, or a directory without an owner file, is left alone. No Ray needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hybridsearch.sharding.ray_runtime import OWNER_FILE, reap_stale_private_rays


def _dead_pid() -> int:
    probe = subprocess.Popen([sys.executable, "-c", "pass"])
    probe.wait()
    return probe.pid


def test_a_dead_owners_private_ray_is_stopped_and_removed(tmp_path: Path) -> None:
    stale, live, foreign = (tmp_path / f"hsray-{n}" for n in ("stale", "live", "foreign"))
    for directory in (stale, live, foreign):
        directory.mkdir()
    (stale / OWNER_FILE).write_text(f"{_dead_pid()}\n")
    (live / OWNER_FILE).write_text(f"{os.getpid()}\n")
    # A leftover agent: a process whose command line names the session directory.
    agent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                              f"--temp-dir={stale}"])  # fmt: skip
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                                  f"--temp-dir={live}"])  # fmt: skip
    try:
        assert reap_stale_private_rays(tmp_path) == [stale]
        assert agent.wait(timeout=10) == -9
        assert bystander.poll() is None
        assert sorted(p.name for p in tmp_path.iterdir()) == ["hsray-foreign", "hsray-live"]
    finally:
        for process in (agent, bystander):
            process.kill()
            process.wait()


def test_processes_found_by_their_open_files_or_directory_are_stopped_first(
    tmp_path: Path,
) -> None:
    """review4-ray #7: Ray's agents rewrite their command line (``ray::DashboardAgent``):
    only a file they hold open in the session directory, or their working directory, names
    it. They are stopped, and the directory removed after them (before: left running)."""
    stale = tmp_path / "hsray-stale"
    stale.mkdir()
    (stale / OWNER_FILE).write_text(f"{_dead_pid()}\n")
    holds_file = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; f = open(sys.stdin.readline().strip(), 'w'); print('ok', flush=True);"
         " time.sleep(60)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holds_file.stdin is not None and holds_file.stdout is not None
    holds_file.stdin.write(f"{stale / 'agent.log'}\n")
    holds_file.stdin.flush()
    assert holds_file.stdout.readline().strip() == "ok"
    lives_there = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=stale)
    try:
        assert str(stale).encode() not in Path(f"/proc/{holds_file.pid}/cmdline").read_bytes()
        assert reap_stale_private_rays(tmp_path) == [stale]
        assert holds_file.wait(timeout=10) == -9 and lives_there.wait(timeout=10) == -9
        assert not stale.exists()
    finally:
        for process in (holds_file, lives_there):
            process.kill()
            process.wait()
        holds_file.stdin.close()
        holds_file.stdout.close()
