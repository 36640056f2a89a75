"""`hybridsearch health`: ask a server's grpc.health.v1 service; exit 0 only when SERVING.

Meant for container HEALTHCHECKs and scripts: prints the status, exit 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hybridsearch.client_channel import call_metadata, open_channel


def run_health(args: argparse.Namespace) -> int:
    """Check health once; 0 when SERVING."""
    with open_channel(args) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types lack Check
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=args.service),
                timeout=args.timeout,
                metadata=call_metadata(args),
            )
        except grpc.RpcError as error:
            failure: grpc.Call = error  # type: ignore[assignment]
            print(f"error: {failure.code().name}: {failure.details()}", file=sys.stderr)
            return 1
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(name)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1
