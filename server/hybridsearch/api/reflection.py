"""Server reflection, v1alpha and v1, so grpcurl, ghz and evans-style tools can list and
describe every service (including the reflection service itself).

grpcio-reflection ships only v1alpha. The v1 messages are wire-identical to v1alpha (same
fields and numbers), so the v1 service name is routed to the same implementation, and a v1
copy of the v1alpha file descriptor (package and file name changed, nothing else) is added
to the descriptor pool so that `describe grpc.reflection.v1.ServerReflection` resolves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
_V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
_V1_PACKAGE = "grpc.reflection.v1"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


class _ReflectionServicer(reflection.aio.ReflectionServicer):
    """grpcio-reflection that also resolves method symbols (`pkg.Service.Method`).

    ghz and grpcurl ask `file_containing_symbol` for the method's full name; the upb
    DescriptorPool behind grpcio-reflection finds services but not their methods, so the stock
    servicer answers NOT_FOUND. A method name is answered with its service's file.
    """

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        pool = descriptor_pool.Default()  # the pool the stock servicer reads
        try:
            pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            service_name, _, method_name = fully_qualified_name.rpartition(".")
            try:
                service = pool.FindServiceByName(service_name)
            except KeyError:
                service = None
            if service is not None and method_name in service.methods_by_name:
                fully_qualified_name = service_name
        return super()._file_containing_symbol(request, fully_qualified_name)  # type: ignore[misc]


def _register_v1_descriptor() -> None:
    """Add grpc/reflection/v1/reflection.proto to the default pool (once)."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    source = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(source)
    source.name = _V1_FILE
    source.package = _V1_PACKAGE
    prefix = f".{_V1ALPHA_PACKAGE}."
    for message in source.message_type:
        for field in message.field:
            if field.type_name.startswith(prefix):
                field.type_name = f".{_V1_PACKAGE}." + field.type_name.removeprefix(prefix)
    for service in source.service:
        for method in service.method:
            for attr in ("input_type", "output_type"):
                name = getattr(method, attr)
                if name.startswith(prefix):
                    setattr(method, attr, f".{_V1_PACKAGE}." + name.removeprefix(prefix))
    source.options.Clear()  # v1alpha's options (deprecation, go_package) are not v1's
    pool.Add(source)


def add_reflection(server: grpc.aio.Server, services: Sequence[str]) -> None:
    """Serve reflection v1alpha and v1 listing ``services`` and both reflection services."""
    _register_v1_descriptor()
    names = (*services, reflection.SERVICE_NAME, REFLECTION_V1)
    servicer = _ReflectionServicer(names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        tuple(
            grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": handler})
            for name in (reflection.SERVICE_NAME, REFLECTION_V1)
        )
    )
