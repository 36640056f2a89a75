"""Building requests and channel settings shared by the sync and asyncio clients."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from hybridsearch_client._gen.hybridsearch.v1 import search_pb2

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
) -> search_pb2.SearchRequest:
    """A ``SearchRequest`` from keyword arguments; a ready request passes through unchanged."""
    if isinstance(query, search_pb2.SearchRequest):
        return query
    return search_pb2.SearchRequest(
        query=query,
        top_k=top_k,
        mode=mode,
        fusion=fusion,
        explain=explain,
        return_fields=list(return_fields),
    )


def call_metadata(bearer_token: str | None) -> tuple[tuple[str, str], ...] | None:
    """Per-call metadata: the bearer token, when one is configured."""
    if bearer_token is None:
        return None
    return (("authorization", f"Bearer {bearer_token}"),)
