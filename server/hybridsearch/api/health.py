"""grpc.health.v1.Health: Check and Watch (grpcio-health-checking's servicer) and List.

The stock servicer leaves `List` (added to health.proto in 2024) unimplemented, while
reflection advertises it; here it answers every service's status, the server's own ("")
included. `Check` of a name it does not know (a collection's, say) is NOT_FOUND naming the
services it knows: health is per gRPC service, not per collection (the stock answer had no
message).
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2 as _health_pb2
from grpc_health.v1._async import HealthServicer

from hybridsearch.errors import echo

# The typing stubs of grpcio-health-checking predate List's messages.
health_pb2: Any = _health_pb2


class HealthService(HealthServicer):
    """The server's health state: Check, Watch and List."""

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

    async def List(  # noqa: N802 (gRPC method name)
        self, request: Any, context: Any
    ) -> Any:
        """The status of every service the server reports on."""
        response = health_pb2.HealthListResponse()
        for service, status in sorted(self._statuses().items()):
            response.statuses[service].status = status
        return response
