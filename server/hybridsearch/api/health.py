"""grpc.health.v1.Health: Check and Watch (grpcio-health-checking's servicer) and List.

The stock servicer leaves `List` (added to health.proto in 2024) unimplemented, while
reflection advertises it; here it answers every service's status, the server's own ("")
included. `Check` of a name it does not know (a collection's, say) is NOT_FOUND naming the
services it knows: health is per gRPC service, not per collection (the stock answer had no
message).

`Watch` streams every change of a service's status, NOT_SERVING at the shutdown included, and
keeps streaming through the shutdown delay (load balancers watch it then). Once the graceful
stop begins (`end_watches`), each open Watch sends the status its watcher has not seen yet
(NOT_SERVING) and ends with UNAVAILABLE: a Watch left open would hold the stop until the grace
period ends. UNAVAILABLE, not OK: grpc's client-side health checking (gRFC A17) treats any end
but UNIMPLEMENTED alike (the subchannel is unhealthy and the Watch is retried), while
UNAVAILABLE also tells any other watcher what every other call is told at the stop: this
server is going away, go elsewhere (an OK end could pass for a normal end of the watch).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2 as _health_pb2
from grpc_health.v1._async import HealthServicer

from hybridsearch.errors import echo

# The typing stubs of grpcio-health-checking predate List's messages.
health_pb2: Any = _health_pb2

#: Why an open Watch ends with UNAVAILABLE when the graceful stop begins.
WATCH_STOPPED = "the server is shutting down: this health watch ends; watch another server"


class HealthService(HealthServicer):
    """The server's health state: Check, Watch and List."""

    def __init__(self) -> None:
        super().__init__()
        # Set, then replaced, at every change a watcher must see: a status, or the stop.
        self._changed = asyncio.Event()
        self._watches_ending = False

    def _announce_change(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def set(self, service: str, status: Any) -> None:
        """Set ``service``'s status (ignored once the shutdown began) and tell the watchers."""
        await super().set(service, status)
        self._announce_change()

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING from now on; open Watch streams keep streaming."""
        await super().enter_graceful_shutdown()
        self._announce_change()

    def end_watches(self) -> None:
        """End every Watch, open or to come, once it has sent the current status: called
        as the graceful stop begins, after `enter_graceful_shutdown`."""
        self._watches_ending = True
        self._announce_change()

    def _statuses(self) -> dict[str, int]:
        statuses: dict[str, int] = getattr(self, "_server_status")  # noqa: B009 (untyped)
        return statuses

    async def Check(  # noqa: N802 (gRPC method name)
        self, request: Any, context: Any
    ) -> Any:
        """The status of one service; NOT_FOUND, naming the known ones, for any other name."""
        statuses = self._statuses()
        status = statuses.get(request.service)
        if status is None:
            known = ", ".join(repr(name) for name in sorted(statuses))
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no health status for service {echo(request.service)}: health is reported "
                f"per gRPC service, not per collection; the services are {known} ('' is the "
                "server as a whole)",
            )
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(  # noqa: N802 (gRPC method name)
        self, request: Any, context: Any
    ) -> None:
        """The service's status now, then each change (SERVICE_UNKNOWN while it has none);
        UNAVAILABLE once the graceful stop began, after the status of that moment."""
        sent = None
        while True:
            # Read before the status: `end_watches` comes after the last change, so a watch
            # that ends has sent that change.
            changed, ending = self._changed, self._watches_ending
            status = self._statuses().get(
                request.service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            )
            if status != sent:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                sent = status
            if ending:
                await context.abort(grpc.StatusCode.UNAVAILABLE, WATCH_STOPPED)
            await changed.wait()

    async def List(  # noqa: N802 (gRPC method name)
        self, request: Any, context: Any
    ) -> Any:
        """The status of every service the server reports on."""
        response = health_pb2.HealthListResponse()
        for service, status in sorted(self._statuses().items()):
            response.statuses[service].status = status
        return response
