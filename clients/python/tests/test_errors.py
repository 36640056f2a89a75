"""Error parsing without a server: a fake RpcError carrying a rich status trailer."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from hybridsearch_client import FieldViolation, index_pb, pb
from hybridsearch_client._errors import error_from_rpc_error, error_from_stream_status


class FakeRpcError(grpc.RpcError):
    def __init__(self, trailers: tuple[tuple[str, str | bytes], ...]) -> None:
        self._trailers = trailers

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.INVALID_ARGUMENT

    def details(self) -> str:
        return "bad request"

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailers


def _status_bytes() -> bytes:
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="top_k", description="at most 1000")
        ]
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="bad request")
    status.details.add().Pack(bad)
    return status.SerializeToString()


def test_field_violations_parsed_from_trailer() -> None:
    error = error_from_rpc_error(FakeRpcError((("grpc-status-details-bin", _status_bytes()),)))
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == "bad request"
    assert error.field_violations == (FieldViolation("top_k", "at most 1000"),)
    assert "top_k: at most 1000" in str(error)


def test_a_retry_info_detail_is_skipped() -> None:
    """The server's RESOURCE_EXHAUSTED (overload) carries a google.rpc.RetryInfo."""
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="server at capacity")
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay={"nanos": 100_000_000}))
    error = error_from_rpc_error(
        FakeRpcError((("grpc-status-details-bin", status.SerializeToString()),))
    )
    assert error.message == "bad request"  # the fake call's own code and message
    assert error.field_violations == ()


def test_a_failed_upsert_stream_gives_its_response_so_far() -> None:
    """The server packs a failed UpsertDocuments stream's response after any RetryInfo."""
    partial = index_pb.UpsertDocumentsResponse(accepted_count=1, applied_messages=1)
    partial.rejected.add(position=1, id="", reason="empty id")
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="server at capacity")
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay={"nanos": 100_000_000}))
    status.details.add().Pack(partial)
    error = error_from_rpc_error(
        FakeRpcError((("grpc-status-details-bin", status.SerializeToString()),))
    )
    assert error.partial_upsert == partial
    assert error_from_rpc_error(FakeRpcError(())).partial_upsert is None


def test_garbage_trailer_keeps_code_and_message() -> None:
    error = error_from_rpc_error(FakeRpcError((("grpc-status-details-bin", b"\xff\xff\xff"),)))
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.field_violations == ()


def test_stream_error_status_converted() -> None:
    status = pb.ErrorStatus(
        code=3,
        message="m",
        field_violations=[pb.FieldViolation(field="search.query", description="d")],
    )
    error = error_from_stream_status(status)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.field_violations == (FieldViolation("search.query", "d"),)


def test_server_and_client_stubs_share_one_descriptor_pool() -> None:
    """The server's `hybridsearch.v1` stubs and the client's private copy register the same
    `hybridsearch/v1/search.proto`; identical files are deduplicated by the default pool."""
    server_stubs = pytest.importorskip("hybridsearch.v1.search_pb2")
    assert server_stubs.SearchRequest.DESCRIPTOR.full_name == pb.SearchRequest.DESCRIPTOR.full_name
    wire = pb.SearchRequest(query="q", top_k=3).SerializeToString()
    assert server_stubs.SearchRequest.FromString(wire).top_k == 3
