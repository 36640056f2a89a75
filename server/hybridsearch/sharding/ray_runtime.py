"""The Ray a `serve --ray` process uses: started (or joined) before anything else, stopped last.

`serve --ray` starts Ray in the main thread before the gRPC server, the encoder's threads or
the event loop exist, and stops it in the main thread after the event loop has closed and
every thread that called Ray has been joined (`cli.serve`). Both orders matter: starting Ray
forks its GCS, raylet and agents (a fork from a process with gRPC and executor threads
running can hang the child: the GCS never writes its port file), and a Ray call or an actor
handle released after `ray.shutdown()` aborts the process (SIGABRT in Ray's core worker).

Both `serve --ray` and `index --ray` (`cli.index_sharded`) connect through `RayRuntime`;
without the optional extra, `import_ray` names it.

``--ray local`` is a new local Ray of this process only: its own temporary directory (never
``/tmp/ray``, so no other Ray on the machine is joined or sees it) and ports Ray picks free;
it stops with the server. ``--ray auto`` is Ray's own rule (RAY_ADDRESS, else a Ray started by
``ray start`` on this machine, else a new local one); ``--ray HOST:PORT`` joins that cluster.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import socket
import tempfile
from pathlib import Path
from types import ModuleType

from hybridsearch.errors import SettingsError, SetupError

log = logging.getLogger(__name__)


ADVICE = (
    "`--ray local` starts a private local Ray; `--ray HOST:PORT` joins a running cluster's "
    "head (the address `ray start --head` prints)"
)
CONNECT_TIMEOUT_S = 5.0
RAY_EXTRA_HINT = "install the optional Ray extra: pip install -e '.[ray]' (ray[serve,data]==2.60.0)"


def import_ray() -> ModuleType:
    """The ``ray`` module, or a `SetupError` naming the extra that provides it."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise SetupError(
            f"--ray needs Ray, which is not installed ({exc}); {RAY_EXTRA_HINT}"
        ) from None


def _cannot(address: str) -> str:
    return f"--ray {address} / HYBRIDSEARCH_RAY: cannot start or join Ray"


def _check_reachable(address: str) -> None:
    """A SettingsError unless something accepts TCP connections at HOST:PORT."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SettingsError(f"{_cannot(address)}: expected auto, local or HOST:PORT. {ADVICE}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise SettingsError(
            f"{_cannot(address)}: no Ray head answers at {address} ({exc}). {ADVICE}"
        ) from None


class RayRuntime:
    """This process's connection to Ray (see the module docstring); `close` disconnects."""

    def __init__(self, address: str) -> None:
        ray = self.ray = import_ray()
        self.address = address
        self._temp_dir: Path | None = None
        self.connected = False
        if ray.is_initialized():  # someone in this process already did (tests, benches)
            return
        if address not in ("auto", "local") and "://" not in address:
            _check_reachable(address)  # ray.init would retry a dead address for minutes
        if address == "local":
            # Short on purpose: Ray's Unix socket paths live below it (108-byte limit).
            self._temp_dir = Path(tempfile.mkdtemp(prefix="hsray-", dir="/tmp"))
        try:
            ray.init(
                address=None if address == "auto" else address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                _temp_dir=None if self._temp_dir is None else str(self._temp_dir),
            )
        except Exception as exc:  # Ray raises ConnectionError, TimeoutError, ValueError...
            where = f"; Ray's logs: {self._temp_dir}" if self._temp_dir else ""
            raise SettingsError(f"{_cannot(address)} ({exc}){where}. {ADVICE}") from exc
        self.connected = True
        log.info(
            "Ray: %s (%s)",
            "a private local Ray" if address == "local" else f"joined or started ({address})",
            self._temp_dir or "Ray's default temporary directory",
        )

    def close(self) -> None:
        """Disconnect (a local Ray this process started stops); remove a private temp dir."""
        if not self.connected:
            return
        self.connected = False
        self.ray.shutdown()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
