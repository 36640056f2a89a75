"""The floor of a gRPC call on this machine: SearchService.Search answered by a grpc.aio server
that does nothing but one hop through a thread pool (as hybridsearch does) and an empty reply.

    python bench/bare_server.py     # prints "listening on HOST:PORT", serves until killed

bench/run_all.py measures it with ghz beside the real server, so the gRPC overhead of
hybridsearch can be read against what grpc.aio + ghz cost here by themselves.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc


class EmptySearch(search_pb2_grpc.SearchServiceServicer):
    """Search: one executor hop, then an empty response."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=4)

    async def Search(self, request: pb.SearchRequest, context: Any) -> pb.SearchResponse:  # noqa: N802
        await asyncio.get_running_loop().run_in_executor(self._pool, lambda: None)
        return pb.SearchResponse()


async def main() -> None:
    server = grpc.aio.server()
    search_pb2_grpc.add_SearchServiceServicer_to_server(EmptySearch(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
