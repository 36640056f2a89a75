"""The Ray Serve application of a KubeRay ``RayService`` (deploy/kuberay/rayservice.yaml).

Ray Serve supervises the gRPC front; it does not carry the queries. `SearchFront` is one Serve
replica that runs ``hybridsearch serve`` as its child process, configured by the pod's
``HYBRIDSEARCH_*`` environment (``HYBRIDSEARCH_RAY=auto`` joins the pod's Ray cluster, whose
shard replicas are plain Ray actors, see `sharding.ray_group`). Calls go straight to the front's
own port, never through a Serve proxy or handle (a handle hop costs ~5 ms more than an actor
call, `bench/results/*-ray-serve.md`). Serve calls `check_health` every few seconds: a front
that exited makes the replica unhealthy, so Serve replaces it (and a new front starts); the
child gets SIGTERM when the replica's process dies (``PR_SET_PDEATHSIG``), so no orphan keeps
the port. The front gets its ``--shutdown-delay-s`` plus ``--grace-period-s`` (read from the
same environment) and `STOP_MARGIN_S` to stop before it is killed, and Serve waits that long
plus the margin again before it kills the replica.

``import_path: hybridsearch.sharding.ray_service:app`` in ``serveConfigV2``; pin the replica to
the pod whose Service carries the gRPC port with a custom resource (``hybridsearch_front``).
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import signal
import subprocess
import sys
from collections.abc import Mapping

from ray import serve

from hybridsearch.config import ServerSettings, settings_from
from hybridsearch.errors import SettingsError
from hybridsearch.settings_rules import MAX_SECONDS

PR_SET_PDEATHSIG = 1
STOP_MARGIN_S = 5.0


def stop_timeout_s(env: Mapping[str, str]) -> float:
    """How long a front configured by ``env`` may take to stop: its shutdown delay and grace
    period, plus `STOP_MARGIN_S`. A setting that does not parse or is out of range counts as
    its default (the front itself then refuses to start, naming it)."""
    defaults = ServerSettings()
    try:
        settings = settings_from(argparse.Namespace(), env)
    except SettingsError:
        settings = defaults
    delay = _seconds(settings.shutdown_delay_s, defaults.shutdown_delay_s)
    grace = _seconds(settings.grace_period_s, defaults.grace_period_s)
    return delay + grace + STOP_MARGIN_S


def _seconds(value: float, default: float) -> float:
    return value if math.isfinite(value) and 0.0 <= value <= MAX_SECONDS else default


STOP_TIMEOUT_S = stop_timeout_s(os.environ)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def front_command(extra_args: list[str]) -> list[str]:
    """The front's command line: this interpreter's ``hybridsearch serve`` (settings from the
    environment) plus ``extra_args``."""
    return [sys.executable, "-m", "hybridsearch.cli", "serve", *extra_args]


class SearchFront:
    """Runs and watches one gRPC front process."""

    def __init__(self, extra_args: list[str] | None = None) -> None:
        self._stop_timeout_s = stop_timeout_s(os.environ)
        self._process = subprocess.Popen(
            front_command(list(extra_args or [])),
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads started yet)
            env=dict(os.environ),
        )

    def check_health(self) -> None:
        """Serve's health probe: the front must still run."""
        code = self._process.poll()
        if code is not None:
            raise RuntimeError(f"the gRPC front exited with code {code}")

    def front_pid(self) -> int:
        """The front process's id (for operators and tests)."""
        return self._process.pid

    def __del__(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=self._stop_timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()


FRONT = serve.deployment(
    num_replicas=1,
    health_check_period_s=5,
    health_check_timeout_s=30,
    graceful_shutdown_timeout_s=STOP_TIMEOUT_S + STOP_MARGIN_S,
    ray_actor_options={"num_cpus": 0},
)(SearchFront)
app = FRONT.bind()
