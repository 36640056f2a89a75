"""The floor of a gRPC call on this machine: SearchService.Search answered by a grpc.aio server
that does nothing but one hop through a thread pool (as hybridsearch does) and an empty reply.

    python -m bench.bare_server [--port P] [--kind aio-hop|aio|sync]
        # prints "listening on HOST:PORT", serves until killed

``--interceptors`` adds hybridsearch's interceptors (`build_interceptors` of whichever
hybridsearch is on PYTHONPATH: bench.overhead runs it with an old commit's and with this
tree's, to price the interceptors alone). ``--kind aio`` answers on the event loop (no hop);
``--kind sync`` is grpc's synchronous server, whose handlers run on its own thread pool (4
threads): the three ways a Python gRPC server can be built for this workload.

bench/run_all.py measures it with ghz beside the real server, so the gRPC overhead of
hybridsearch can be read against what grpc.aio + ghz cost here by themselves.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from hybridsearch.api.interceptors import build_interceptors
from hybridsearch.api.metrics import ServerMetrics
from hybridsearch.config import ServerSettings
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc


class EmptySearch(search_pb2_grpc.SearchServiceServicer):
    """Search: one executor hop (unless ``hop`` is False), then an empty response."""

    def __init__(self, *, hop: bool = True) -> None:
        self._pool = ThreadPoolExecutor(max_workers=4)
        self._hop = hop

    async def Search(  # noqa: N802
        self, request: pb.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SearchResponse:
        if self._hop:
            await asyncio.get_running_loop().run_in_executor(self._pool, lambda: None)
        return pb.SearchResponse()

    async def BatchSearch(  # noqa: N802
        self, request: pb.BatchSearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.BatchSearchResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the bare server answers Search only")

    async def SearchStream(  # noqa: N802
        self,
        request_iterator: AsyncIterator[pb.SearchStreamRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[pb.SearchStreamResponse]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the bare server answers Search only")
        yield pb.SearchStreamResponse()  # never reached: makes this an async generator


class SyncEmptySearch(search_pb2_grpc.SearchServiceServicer):
    """Search on grpc's synchronous server (a pool thread runs it): an empty response."""

    def Search(  # noqa: N802
        self, request: pb.SearchRequest, context: grpc.ServicerContext
    ) -> pb.SearchResponse:
        return pb.SearchResponse()

    def BatchSearch(  # noqa: N802
        self, request: pb.BatchSearchRequest, context: grpc.ServicerContext
    ) -> pb.BatchSearchResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the bare server answers Search only")

    def SearchStream(  # noqa: N802
        self, request_iterator: Iterator[pb.SearchStreamRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SearchStreamResponse]:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the bare server answers Search only")


def serve_sync(port: int) -> None:
    """The synchronous server on 127.0.0.1:``port`` until killed."""
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    search_pb2_grpc.add_SearchServiceServicer_to_server(SyncEmptySearch(), server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


async def serve(port: int, *, hop: bool = True, interceptors: bool = False) -> None:
    """Serve on 127.0.0.1:``port`` (0: any free port) until killed."""
    chain = build_interceptors(ServerSettings(), ServerMetrics()) if interceptors else None
    server = grpc.aio.server(interceptors=chain)
    search_pb2_grpc.add_SearchServiceServicer_to_server(EmptySearch(hop=hop), server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--kind", choices=("aio-hop", "aio", "sync"), default="aio-hop")
    parser.add_argument("--interceptors", action="store_true", help="aio: hybridsearch's chain")
    args = parser.parse_args()
    if args.kind == "sync":
        serve_sync(args.port)
    else:
        asyncio.run(serve(args.port, hop=args.kind == "aio-hop", interceptors=args.interceptors))


if __name__ == "__main__":
    main()
