"""Python client for the hybridsearch gRPC server (``hybridsearch.v1.SearchService`` and
``hybridsearch.v1.IndexService``).

``pb`` is the generated search message module (``pb.SearchRequest``,
``pb.RETRIEVAL_MODE_SPARSE``...); ``index_pb`` the index one (``index_pb.Document``,
``index_pb.UpsertDocumentsRequest``...).
"""

from hybridsearch_client._client import (
    DEFAULT_TIMEOUT_S,
    AsyncHybridSearchClient,
    HybridSearchClient,
    StreamResult,
)
from hybridsearch_client._documents import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BATCH_BYTES,
    Document,
    DocumentLike,
    UpsertItem,
)
from hybridsearch_client._errors import FieldViolation, HybridSearchError
from hybridsearch_client._gen.hybridsearch.v1 import index_pb2 as index_pb
from hybridsearch_client._gen.hybridsearch.v1 import search_pb2 as pb
from hybridsearch_client._requests import QueryLike, TlsConfig, build_search_request

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_TIMEOUT_S",
    "AsyncHybridSearchClient",
    "Document",
    "DocumentLike",
    "FieldViolation",
    "HybridSearchClient",
    "HybridSearchError",
    "QueryLike",
    "StreamResult",
    "TlsConfig",
    "UpsertItem",
    "build_search_request",
    "index_pb",
    "pb",
]
