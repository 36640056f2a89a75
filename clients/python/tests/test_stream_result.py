"""StreamResult conversion (no server needed)."""

from __future__ import annotations

from hybridsearch_client import StreamResult, pb


def test_stream_result_carries_the_partial_flag() -> None:
    early = pb.SearchStreamResponse(request_id="q", response=pb.SearchResponse(), partial=True)
    final = pb.SearchStreamResponse(request_id="q", response=pb.SearchResponse())
    assert StreamResult.from_proto(early).partial is True
    assert StreamResult.from_proto(final).partial is False
