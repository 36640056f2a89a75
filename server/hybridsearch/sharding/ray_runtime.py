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
``/tmp/ray``, so no other Ray on the machine is joined or sees it; it holds the owner's PID)
and ports Ray picks free; it stops with the server. A process killed with SIGKILL cannot stop
it: the next ``--ray local`` of the same user kills what is left of a dead owner's Ray (its
agents outlive the raylet) and removes its directory (`reap_stale_private_rays`).
``--ray auto`` is Ray's own rule (RAY_ADDRESS, else a Ray started by ``ray start`` on this
machine, else a new local one); ``--ray HOST:PORT`` joins that cluster.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from types import ModuleType

from hybridsearch.errors import SettingsError, SetupError

log = logging.getLogger(__name__)


ADVICE = (
    "`--ray local` starts a private local Ray; `--ray HOST:PORT` joins a running cluster's "
    "head (the address `ray start --head` prints)"
)
CONNECT_TIMEOUT_S = 5.0
PRIVATE_PREFIX = "hsray-"
REAP_WAIT_S = 5.0  # how long a reap waits for a dead owner's Ray processes to exit
OWNER_FILE = "hybridsearch-owner.pid"  # in a private Ray's directory: the PID that started it
RAY_EXTRA_HINT = "install the optional Ray extra: pip install -e '.[ray]' (ray[serve,data]==2.60.0)"


def import_ray() -> ModuleType:
    """The ``ray`` module, or a `SetupError` naming the extra that provides it."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise SetupError(
            f"--ray needs Ray, which is not installed ({exc}); {RAY_EXTRA_HINT}"
        ) from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process has that PID now: not ours to judge
    return True


def _names(proc: Path, path: Path) -> bool:
    """Whether the process ``proc`` (/proc/PID) names ``path``: in its command line, or by
    its working directory or a file it has open there (Ray's agents rewrite their command
    line to ``ray::DashboardAgent`` and the like, but keep their logs open in the session
    directory)."""
    if str(path).encode() in (proc / "cmdline").read_bytes():
        return True
    inside = str(path) + "/"
    links = [proc / "cwd", *(proc / "fd").iterdir()]
    for link in links:
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(link)
            if target == str(path) or target.startswith(inside):
                return True
    return False


def _processes_using(path: Path) -> list[int]:
    """This user's processes that name ``path`` (a Ray session's daemons and agents)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if proc.stat().st_uid != os.getuid():
                continue
            if _names(proc, path):
                found.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile
    return found


def _gone(pids: list[int], timeout_s: float) -> bool:
    """Whether every one of ``pids`` has exited (or is a zombie) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in pids if _running(p)]
        if not left or time.monotonic() >= deadline:
            return not left
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def reap_stale_private_rays(root: Path = Path("/tmp")) -> list[Path]:
    """Stop and remove the private Rays (``--ray local``) of this user whose owner process is
    dead (SIGKILLed or OOM-killed: its agents ignore SIGTERM and outlive the raylet); the
    directories removed. Its processes are those that name the directory (`_names`); the
    directory is removed once they have exited. A directory without an owner file (another
    program's) is left."""
    removed = []
    for directory in sorted(root.glob(f"{PRIVATE_PREFIX}*")):
        try:
            if directory.stat().st_uid != os.getuid():
                continue
            owner = int((directory / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        pids = _processes_using(directory)
        for pid in pids:
            with contextlib.suppress(OSError):  # gone meanwhile
                os.kill(pid, signal.SIGKILL)
        if not _gone(pids, REAP_WAIT_S):
            # Its directory is the only way to find them again: kept for the next start.
            log.warning("the private Ray of dead process %d (%s) is not gone yet", owner, directory)
            continue
        shutil.rmtree(directory, ignore_errors=True)
        log.info("removed the private Ray of dead process %d (%s)", owner, directory)
        removed.append(directory)
    return removed


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
            reap_stale_private_rays()
            self._temp_dir = Path(tempfile.mkdtemp(prefix=PRIVATE_PREFIX, dir="/tmp"))
            (self._temp_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
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
