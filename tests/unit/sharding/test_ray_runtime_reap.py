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
