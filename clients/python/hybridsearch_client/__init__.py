"""Python client for the hybridsearch gRPC server (``hybridsearch.v1.SearchService``,
``hybridsearch.v1.IndexService`` and ``hybridsearch.v1.CollectionService``).

``pb`` is the generated search message module (``pb.SearchRequest``,
``pb.RETRIEVAL_MODE_SPARSE``...); ``index_pb`` the index one (``index_pb.Document``,
``index_pb.UpsertDocumentsRequest``...); ``collection_pb`` the collection one
(``collection_pb.CollectionInfo``...); ``filter_pb`` the raw ``Filter`` messages, which
:mod:`hybridsearch_client.filters` builds for you.
"""

from hybridsearch_client import filters
from hybridsearch_client._client import (
    DEFAULT_TIMEOUT_S,
    MAX_RECEIVE_MESSAGE_BYTES,
    AsyncHybridSearchClient,
    HybridSearchClient,
    StreamResult,
)
from hybridsearch_client._collections import (
    AddAlias,
    AliasActionLike,
    DenseIndex,
    FieldType,
    RemoveAlias,
    SchemaField,
    SchemaLike,
)
from hybridsearch_client._documents import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BATCH_BYTES,
    Document,
    DocumentLike,
    UpsertItem,
)
from hybridsearch_client._errors import FieldViolation, HybridSearchError
from hybridsearch_client._gen.hybridsearch.v1 import collection_pb2 as collection_pb
from hybridsearch_client._gen.hybridsearch.v1 import filter_pb2 as filter_pb
from hybridsearch_client._gen.hybridsearch.v1 import index_pb2 as index_pb
from hybridsearch_client._gen.hybridsearch.v1 import search_pb2 as pb
from hybridsearch_client._requests import QueryLike, TlsConfig, build_search_request

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_TIMEOUT_S",
    "MAX_RECEIVE_MESSAGE_BYTES",
    "AddAlias",
    "AliasActionLike",
    "AsyncHybridSearchClient",
    "DenseIndex",
    "Document",
    "DocumentLike",
    "FieldType",
    "FieldViolation",
    "HybridSearchClient",
    "HybridSearchError",
    "QueryLike",
    "RemoveAlias",
    "SchemaField",
    "SchemaLike",
    "StreamResult",
    "TlsConfig",
    "UpsertItem",
    "build_search_request",
    "collection_pb",
    "filter_pb",
    "filters",
    "index_pb",
    "pb",
]
