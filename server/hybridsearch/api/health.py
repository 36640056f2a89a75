"""grpc.health.v1.Health: Check and Watch (grpcio-health-checking's servicer) and List.

The stock servicer leaves `List` (added to health.proto in 2024) unimplemented, while
reflection advertises it; here it answers every service's status, the server's own ("")
included.
"""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health_pb2 as _health_pb2
from grpc_health.v1._async import HealthServicer

# The typing stubs of grpcio-health-checking predate List's messages.
health_pb2: Any = _health_pb2


class HealthService(HealthServicer):
    """The server's health state: Check, Watch and List."""

    async def List(  # noqa: N802 (gRPC method name)
        self, request: Any, context: Any
    ) -> Any:
        """The status of every service the server reports on."""
        response = health_pb2.HealthListResponse()
        statuses: dict[str, int] = getattr(self, "_server_status")  # noqa: B009 (untyped)
        for service, status in sorted(statuses.items()):
            response.statuses[service].status = status
        return response
