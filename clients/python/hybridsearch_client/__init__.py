"""Python client for the hybridsearch gRPC server (``hybridsearch.v1.SearchService``).

``pb`` is the generated message module (``pb.SearchRequest``, ``pb.RETRIEVAL_MODE_SPARSE``...).
"""

from hybridsearch_client._client import (
    DEFAULT_TIMEOUT_S,
    AsyncHybridSearchClient,
    HybridSearchClient,
    StreamResult,
)
from hybridsearch_client._errors import FieldViolation, HybridSearchError
from hybridsearch_client._gen.hybridsearch.v1 import search_pb2 as pb
from hybridsearch_client._requests import QueryLike, TlsConfig, build_search_request

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "AsyncHybridSearchClient",
    "FieldViolation",
    "HybridSearchClient",
    "HybridSearchError",
    "QueryLike",
    "StreamResult",
    "TlsConfig",
    "build_search_request",
    "pb",
]
