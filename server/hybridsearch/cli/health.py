"""`hybridsearch health`: ask a server's grpc.health.v1 service; exit 0 only when SERVING.

Meant for container HEALTHCHECKs and scripts: prints the status, exit 1 otherwise.
"""

from __future__ import annotations

import argparse
from typing import Any

from hybridsearch.cli.channel import (
    add_channel_arguments,
    call_metadata,
    open_channel,
    report_rpc_error,
)
from hybridsearch.cli.flag_types import timeout_seconds


def add_health_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``health``."""
    p = commands.add_parser("health", help="check a server's health (exit 0 when SERVING)")
    add_channel_arguments(p)
    p.add_argument("--service", default="", help="service name to check ('' = the server)")
    p.add_argument("--timeout", type=timeout_seconds, default=5.0, help="deadline in seconds")
    p.set_defaults(func=run_health)


def run_health(args: argparse.Namespace) -> int:
    """Check health once; 0 when SERVING."""
    import grpc  # noqa: PLC0415 (kept off the import path of `serve`, which forks first)
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415

    with open_channel(args) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types lack Check
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=args.service),
                timeout=args.timeout,
                metadata=call_metadata(args),
            )
        except grpc.RpcError as error:
            report_rpc_error(error, args)
            return 1
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(name)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1
