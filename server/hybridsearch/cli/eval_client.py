"""`hybridsearch eval --server`: runs a spec against a server with BatchSearch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hybridsearch.api.convert import request_to_proto
from hybridsearch.eval.retrievers import RunSpec, ranked
from hybridsearch.v1 import search_pb2 as pb


class GrpcRetriever:
    """Runs a spec against a server with BatchSearch (one call per chunk of queries).

    The requests are the same `SearchRequestSpec`s the in-process retriever resolves, sent as
    they are: the server applies its own defaults and limits.
    """

    def __init__(
        self,
        stub: Any,
        spec: RunSpec,
        *,
        timeout_s: float = 300.0,
        collection: str = "",
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        """``collection``: the server's collection or alias to search (empty: its default);
        ``metadata``: what each call carries (the bearer token, `cli.channel.call_metadata`)."""
        self._stub = stub
        self._spec = spec
        self._timeout_s = timeout_s
        self._collection = collection
        self._metadata = tuple(metadata)

    def batch_request(self, queries: Mapping[str, str], *, top_k: int) -> pb.BatchSearchRequest:
        """The BatchSearchRequest for ``queries`` (in order)."""
        specs = [self._spec.request(text, top_k) for text in queries.values()]
        requests = [request_to_proto(spec) for spec in specs]
        for request in requests:
            request.collection = self._collection
        return pb.BatchSearchRequest(requests=requests)

    def retrieve(self, queries: Mapping[str, str], *, top_k: int) -> dict[str, dict[str, float]]:
        """qid → {docid: score} for each query (gRPC errors propagate)."""
        request = self.batch_request(queries, top_k=top_k)
        response = self._stub.BatchSearch(request, timeout=self._timeout_s, metadata=self._metadata)
        return {qid: ranked(r) for qid, r in zip(queries, response.responses, strict=True)}
