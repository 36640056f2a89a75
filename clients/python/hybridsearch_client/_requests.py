"""Building requests and channel settings shared by the sync and asyncio clients."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from hybridsearch_client._gen.hybridsearch.v1 import search_pb2
from hybridsearch_client.filters import FilterLike, to_filter_proto

QueryLike = str | search_pb2.SearchRequest
"""A query text (server defaults for everything else) or a full ``SearchRequest``."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS settings. ``root_certificates`` None means the system trust store; the client
    certificate pair enables mutual TLS. All values are PEM bytes."""

    root_certificates: bytes | None = None
    private_key: bytes | None = None
    certificate_chain: bytes | None = None
    server_name_override: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def channel_options(self) -> list[tuple[str, str]]:
        if self.server_name_override is None:
            return []
        return [("grpc.ssl_target_name_override", self.server_name_override)]


def build_search_request(
    query: QueryLike,
    *,
    top_k: int = 0,
    mode: search_pb2.RetrievalMode.ValueType = search_pb2.RETRIEVAL_MODE_UNSPECIFIED,
    fusion: search_pb2.FusionOptions | None = None,
    explain: bool = False,
    return_fields: Sequence[search_pb2.StoredField.ValueType] = (),
    collection: str = "",
    filter: FilterLike | None = None,
    offset: int = 0,
    highlight: bool | search_pb2.HighlightOptions = False,
    highlight_max_chars: int | None = None,
) -> search_pb2.SearchRequest:
    """A ``SearchRequest`` from keyword arguments; a ready request passes through unchanged.

    ``collection`` is a collection name or alias (empty: the server's default collection);
    ``filter`` a :mod:`~hybridsearch_client.filters` condition or a raw ``Filter`` message;
    ``offset`` the hits to skip (pagination). ``highlight=True`` asks for snippets of the title
    and text with the matched terms located; ``highlight_max_chars`` (20 to 2000) sets their
    length and implies ``highlight=True``. A ``HighlightOptions`` message is taken as is.
    """
    if isinstance(query, search_pb2.SearchRequest):
        return query
    if isinstance(highlight, search_pb2.HighlightOptions):
        highlight_options: search_pb2.HighlightOptions | None = highlight
    elif highlight or highlight_max_chars is not None:
        highlight_options = search_pb2.HighlightOptions(enabled=True, max_chars=highlight_max_chars)
    else:
        highlight_options = None
    return search_pb2.SearchRequest(
        query=query,
        top_k=top_k,
        mode=mode,
        fusion=fusion,
        explain=explain,
        return_fields=list(return_fields),
        collection=collection,
        filter=None if filter is None else to_filter_proto(filter),
        offset=offset,
        highlight=highlight_options,
    )


def call_metadata(bearer_token: str | None) -> tuple[tuple[str, str], ...] | None:
    """Per-call metadata: the bearer token, when one is configured."""
    if bearer_token is None:
        return None
    return (("authorization", f"Bearer {bearer_token}"),)
