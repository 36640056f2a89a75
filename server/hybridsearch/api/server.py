"""The grpc.aio server: SearchService, IndexService, CollectionService, health, reflection
(v1, v1alpha), stop."""

from __future__ import annotations

import asyncio
import contextvars
import errno
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hybridsearch.api.admission import Admission
from hybridsearch.api.auth import TokenSet
from hybridsearch.api.collection_servicer import CollectionServicer
from hybridsearch.api.engine_slot import EngineSlot
from hybridsearch.api.health import HealthService
from hybridsearch.api.index_servicer import IndexServicer
from hybridsearch.api.interceptors import build_interceptors
from hybridsearch.api.metrics import ServerMetrics
from hybridsearch.api.proto_backend import backend_warning, protobuf_backend
from hybridsearch.api.reflection import add_reflection
from hybridsearch.api.search_servicer import SearchServicer
from hybridsearch.api.shutdown import Phase, ShutdownSignals
from hybridsearch.api.tls import server_credentials
from hybridsearch.config import ServerSettings, describe
from hybridsearch.engine.batching import BatchStats, total_stats
from hybridsearch.engine.dense_arm import DenseArm
from hybridsearch.engine.loader import LoadedIndex
from hybridsearch.engine.registry import CollectionCounts, CollectionRegistry
from hybridsearch.engine.searcher import HybridSearcher
from hybridsearch.errors import SettingsError, SetupError
from hybridsearch.sharding.group import start_stopped
from hybridsearch.startup_files import StartupFiles, create_data_dir, read_startup_files
from hybridsearch.v1 import (
    collection_pb2,
    collection_pb2_grpc,
    index_pb2,
    index_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)

log = logging.getLogger(__name__)

SEARCH_SERVICE = search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name
INDEX_SERVICE = index_pb2.DESCRIPTOR.services_by_name["IndexService"].full_name
COLLECTION_SERVICE = collection_pb2.DESCRIPTOR.services_by_name["CollectionService"].full_name
SERVED = (SEARCH_SERVICE, INDEX_SERVICE, COLLECTION_SERVICE)
#: Threads running CollectionService changes (one at a time, but deletions drain apart).
CHANGE_THREADS = 4
# A bare HybridSearcher serves searches only (IndexService writes: FAILED_PRECONDITION); a
# LoadedIndex or a bare searcher is served as the single, default collection.
Loaded = CollectionRegistry | LoadedIndex | HybridSearcher
EngineFactory = Callable[[ServerSettings], Loaded]


def format_address(host: str, port: int) -> str:
    """HOST:PORT, with IPv6 hosts bracketed."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _bind_error(host: str, port: int, *, reuse_port: bool) -> tuple[str, str] | None:
    """Why ``host:port`` cannot be bound, found by binding it (grpc does not say), with the
    setting to blame: ``host`` when it names no address of this host, else ``port`` (in use,
    privileged); None when it can be bound. ``reuse_port``: bind as ``--workers`` > 1 does
    (the workers share the port)."""
    try:
        infos = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:  # socket.gaierror: not a name or an address
        return "host", exc.strerror or str(exc)
    try:
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does
            if reuse_port:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        setting = "host" if exc.errno == errno.EADDRNOTAVAIL else "port"
        return setting, exc.strerror or str(exc)
    return None


class SearchServer:
    """Owns the grpc.aio server, health state and the engine's lifecycle.

    ``files``: the token and TLS files as `serve` read and checked them at start-up (each is
    read once); without them they are read here.
    """

    def __init__(
        self,
        settings: ServerSettings,
        engine_factory: EngineFactory,
        files: StartupFiles | None = None,
    ) -> None:
        if files is None:
            files = read_startup_files(settings)  # a SettingsError for bad ones
        self.settings = settings
        self._engine_factory = engine_factory
        self._slot = EngineSlot()
        self._executor = ThreadPoolExecutor(
            max_workers=settings.search_threads, thread_name_prefix="search"
        )
        # Writes (encoding + commits) get their own threads: searches never queue behind them.
        self._write_executor = ThreadPoolExecutor(
            max_workers=settings.write_threads, thread_name_prefix="index-write"
        )
        # Collection changes get theirs too: a deletion waiting for the calls still using its
        # collection holds one of these, never a write thread.
        self._change_executor = ThreadPoolExecutor(
            max_workers=CHANGE_THREADS, thread_name_prefix="collection-change"
        )
        self.health = HealthService()
        self.metrics = ServerMetrics()
        self.metrics.track_collections(self._collection_counts)
        self.metrics.track_batching(self._batch_stats)
        self._credentials = server_credentials(files.tls)
        tokens = TokenSet.of(files.full_tokens, files.read_only_tokens)
        size = settings.max_message_bytes
        admission = Admission(settings.max_in_flight)  # calls, and streams' requests in work
        self._grace_ends: float | None = None  # on the loop's clock, once the stop began
        self.server = grpc.aio.server(
            interceptors=build_interceptors(
                settings, self.metrics, admission, tokens, self._calls_cut
            ),
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
                # Several worker processes share one port (see hybridsearch.cli.workers).
                ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
            ],
        )
        self._stopping = asyncio.Event()  # set as the graceful stop begins: streams end
        search_pb2_grpc.add_SearchServiceServicer_to_server(
            SearchServicer(self._slot, settings, self._executor, self._stopping, admission),
            self.server,
        )
        index_pb2_grpc.add_IndexServiceServicer_to_server(
            IndexServicer(self._slot, settings, self._write_executor, self._stopping, admission),
            self.server,
        )
        collection_pb2_grpc.add_CollectionServiceServicer_to_server(
            CollectionServicer(self._slot, self._change_executor), self.server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        add_reflection(self.server, (*SERVED, health_name))
        self.port = 0
        self._registry: CollectionRegistry | None = None
        # Every query batcher (dense arm) served so far, each once however many collections
        # share it: kept after its collections are deleted, so that the counters never go
        # back (in a data directory the shared encoders hold them until the server stops).
        self._arms: dict[int, DenseArm] = {}
        self._loading: Future[Loaded] | None = None  # the engine factory's run, once begun
        self._loading_stopped = threading.Event()  # set by `stop`: ends a wait for replicas

    def _collection_counts(self) -> CollectionCounts:
        # a scrape still answers while a shard has no live replica
        return self._registry.counts() if self._registry is not None else CollectionCounts()

    def _batch_stats(self) -> BatchStats | None:
        """The counters of every query batcher, summed (None: none yet)."""
        if self._registry is not None:
            for served in self._registry.served():
                arm = served.searcher.dense_arm
                if arm is not None:
                    self._arms.setdefault(id(arm), arm)
        return total_stats(s for arm in list(self._arms.values()) if (s := arm.stats()) is not None)

    def _calls_cut(self) -> bool:
        """Whether the graceful stop's grace period has ended: grpc cancels the calls still
        running then (their clients see UNAVAILABLE), so the access log and metrics say so.
        grpc's own timer for it starts after ours, so a call it cuts ends after this turns
        True; a call its client cancels within the grace period stays CANCELLED."""
        ends = self._grace_ends
        return ends is not None and asyncio.get_running_loop().time() >= ends

    def loaded(self) -> bool:
        """Whether the index (or data directory) has loaded: health reports SERVING."""
        return self._registry is not None

    async def _set_health(self, status: Any) -> None:
        for name in ("", *SERVED):
            await self.health.set(name, status)

    async def start(self) -> str:
        """Bind, create a missing ``--data-dir``, and start serving (health NOT_SERVING);
        returns the bound HOST:PORT.

        Raises:
            SetupError: naming ``--host`` (no address of this host) or ``--port`` (in use,
                privileged), or ``--metrics-port``, when it cannot be bound, and why; or
                ``--data-dir`` when it cannot be created.
        """
        settings = self.settings
        address = format_address(settings.host, settings.port)
        reuse_port = settings.workers > 1
        # A port that cannot be bound is found first: grpc's C core would log its own lines
        # about the failed bind (add_port.cc) above the one line naming the setting.
        refused = _bind_error(settings.host, settings.port, reuse_port=reuse_port)
        if refused is not None:
            setting, why = refused
            raise SetupError(f"{describe(setting)}: cannot bind {address}: {why}")
        try:
            if self._credentials is None:
                self.port = self.server.add_insecure_port(address)
            else:
                self.port = self.server.add_secure_port(address, self._credentials)
        except RuntimeError:  # grpc: "Failed to bind to address ..." (no reason given)
            self.port = 0
        if self.port == 0:
            refused = _bind_error(settings.host, settings.port, reuse_port=reuse_port)
            if refused is None and self._credentials is not None:
                # The files parsed (hybridsearch.startup_files), but grpc's TLS library does
                # not take them (a DSA key, for one).
                raise SetupError(
                    f"{describe('tls_cert')}: grpc cannot serve TLS with the --tls-cert, "
                    "--tls-key and --tls-client-ca files (its log lines above say why)"
                )
            setting, why = refused or ("port", "refused by grpc")
            raise SetupError(f"{describe(setting)}: cannot bind {address}: {why}")
        if settings.metrics_port:
            try:
                self.metrics.serve_http(settings.metrics_host, settings.metrics_port)
            except OSError as exc:
                where = format_address(settings.metrics_host, settings.metrics_port)
                raise SetupError(
                    f"{describe('metrics_port')}: cannot bind {where}: {exc.strerror or exc}"
                ) from None
        try:
            create_data_dir(settings)  # last: a start refused above leaves no new directory
        except SettingsError:
            self.metrics.close()
            raise
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()
        return format_address(self.settings.host, self.port)

    async def load(self) -> None:
        """Load the index (or the data directory's collections) off the event loop, then
        report SERVING."""
        work = contextvars.copy_context()  # a stop ends a wait for shard replicas (`stop`)
        work.run(start_stopped.set, self._loading_stopped)
        self._loading = self._executor.submit(work.run, self._engine_factory, self.settings)
        registry = _as_registry(await asyncio.wrap_future(self._loading))
        self._registry = registry
        self._slot.set_registry(registry)
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> bool:
        """NOT_SERVING, refuse new calls, let in-flight calls finish within the grace period
        (open SearchStreams answer the requests they have, open UpsertDocuments streams finish
        the message they apply, open health Watches send NOT_SERVING, then all end with
        UNAVAILABLE).

        A load still in progress gets what is left of the grace period to end (a wait for
        shard replicas ends at once). Returns False when it did not: it is abandoned, its
        thread still running (a process then exits without joining it, see `serve`); True
        once everything has stopped and closed.
        """
        self._loading_stopped.set()
        loop = asyncio.get_running_loop()
        grace_ends = loop.time() + self.settings.grace_period_s
        self._grace_ends = grace_ends
        await self.health.enter_graceful_shutdown()
        self.health.end_watches()  # after NOT_SERVING: an open Watch would hold the stop
        self._stopping.set()
        await self.server.stop(self.settings.grace_period_s)
        # In-flight commits finish before the writer closes (a commit is never cut short).
        await asyncio.to_thread(self._write_executor.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(self._change_executor.shutdown, wait=True, cancel_futures=True)
        loading = self._loading
        if loading is not None and not loading.done():
            waiting = asyncio.wrap_future(loading)
            await asyncio.wait({waiting}, timeout=max(0.0, grace_ends - loop.time()))
            if not loading.done():
                waiting.cancel()  # the load's thread then reports to no one
                self._executor.shutdown(wait=False, cancel_futures=True)
                self.metrics.close()
                return False
        if self._registry is None and loading is not None and _succeeded(loading):
            self._registry = _as_registry(loading.result())  # loaded once the stop began
        # Searches still running (cancelled calls' work) finish before the engine closes:
        # none then runs on a closed shard, or calls Ray after it stopped.
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        if self._registry is not None:
            self._registry.close()
        self.metrics.close()
        return True


def _as_registry(loaded: Loaded) -> CollectionRegistry:
    """What the engine factory made, as a registry (one collection, unless it is one)."""
    if not isinstance(loaded, CollectionRegistry | LoadedIndex):  # a bare searcher
        loaded = LoadedIndex(loaded, None, read_only_reason="it serves searches only")
    if isinstance(loaded, LoadedIndex):
        loaded = CollectionRegistry.single(loaded)
    return loaded


def _succeeded(future: Future[Loaded]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _print_listening(address: str) -> None:
    print(f"listening on {address}", flush=True)


async def serve(
    settings: ServerSettings,
    engine_factory: EngineFactory,
    announce: Callable[[str], None] = _print_listening,
    files: StartupFiles | None = None,
) -> int:
    """Run until SIGTERM/SIGINT; print ``listening on HOST:PORT`` first. Returns the exit code.

    ``announce`` receives the bound address (a worker process tells its parent instead).
    ``files``: the token and TLS files `serve` read and checked (else they are read here). A
    served server first waits out ``--shutdown-delay-s`` (health NOT_SERVING, calls still
    answered; a further signal ends it), then stops gracefully; a further signal then only
    logs that the shutdown is under way (see `api.shutdown`). An index load the grace period
    does not see end is not waited for: the process exits 0 at once (`os._exit`; its thread
    may be stuck anywhere, so neither joining it nor closing what it uses is safe).
    """
    warning = backend_warning(protobuf_backend())
    if warning is not None:
        log.warning("%s", warning)
    server = SearchServer(settings, engine_factory, files)
    address = await server.start()
    announce(address)
    grace = settings.grace_period_s
    signals = ShutdownSignals(settings.shutdown_delay_s, grace, server.loaded)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals.on_signal, sig)
    loading = asyncio.create_task(server.load())
    stopping = asyncio.create_task(signals.requested.wait())
    await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if loading.done() and loading.exception() is not None:
        exc = loading.exception()
        print(f"error: cannot load the index: {exc}", file=sys.stderr, flush=True)
        await server.stop()
        return 1
    if not signals.requested.is_set():
        log.info("serving %s", settings.data_dir or settings.index)
    await stopping
    if signals.phase is Phase.DELAY:
        await server.health.enter_graceful_shutdown()
        log.info(
            "shutdown delay: NOT_SERVING, still answering calls for %.1f s",
            settings.shutdown_delay_s,
        )
        await signals.delay()
    if not loading.done():
        log.info("shutting down while the index loads: the load gets the grace period to end")
    loading.cancel()
    log.info("shutting down (grace %.1f s)", grace)
    if not await server.stop():
        log.warning(
            "the index load did not end within the grace period (%.1f s): exiting without it",
            grace,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
