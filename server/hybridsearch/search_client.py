"""`hybridsearch search`: query a running server and print ranked hits."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from hybridsearch.client_channel import call_metadata, open_channel
from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc

MODES = {
    "hybrid": pb.RETRIEVAL_MODE_HYBRID,
    "dense": pb.RETRIEVAL_MODE_DENSE,
    "sparse": pb.RETRIEVAL_MODE_SPARSE,
}
METHODS = {"interpolation": pb.FUSION_METHOD_INTERPOLATION, "rrf": pb.FUSION_METHOD_RRF}


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations carried by an error's trailers."""
    metadata: Any = error.trailing_metadata()
    for key, value in metadata or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            found = []
            for detail in status.details:
                bad_request = error_details_pb2.BadRequest()
                if detail.Unpack(bad_request):
                    found += [(v.field, v.description) for v in bad_request.field_violations]
            return found
    return []


def build_request(args: argparse.Namespace) -> pb.SearchRequest:
    """The SearchRequest the command's flags describe."""
    request = pb.SearchRequest(
        query=args.query,
        top_k=args.top_k,
        mode=MODES[args.mode],
        explain=args.explain,
        return_fields=[pb.STORED_FIELD_TITLE],
    )
    if args.fusion:
        request.fusion.method = METHODS[args.fusion]
    if args.alpha is not None:
        request.fusion.alpha = args.alpha
    return request


def _format_arm(arm: pb.ArmScore | None) -> str:
    if arm is None:
        return "-"
    return f"#{arm.rank} raw {arm.raw_score:.4f} norm {arm.normalized_score:.4f}"


def print_response(response: pb.SearchResponse) -> None:
    """Human-readable hits and timings."""
    for hit in response.hits:
        title = (hit.title or "").replace("\n", " ")[:80]
        print(f"{hit.rank:>4}  {hit.id:<16} {hit.score:10.4f}  {title}")
        if hit.HasField("explanation"):
            e = hit.explanation
            sparse = e.sparse if e.HasField("sparse") else None
            dense = e.dense if e.HasField("dense") else None
            print(f"        sparse {_format_arm(sparse)} | dense {_format_arm(dense)}")
    t = response.timings
    print(
        f"-- {len(response.hits)} hits; total {t.total_us} us (encode {t.encode_us}, "
        f"dense {t.dense_us}, sparse {t.sparse_us}, fusion {t.fusion_us}, fetch {t.fetch_us})"
    )


def run_search(args: argparse.Namespace) -> int:
    """Send one query; print the hits (or the error and its field violations)."""
    with open_channel(args) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        try:
            response = stub.Search(
                build_request(args), timeout=args.timeout, metadata=call_metadata(args)
            )
        except grpc.RpcError as error:
            failure: Any = error
            print(f"error: {failure.code().name}: {failure.details()}", file=sys.stderr)
            for field, description in field_violations(error):
                print(f"  {field}: {description}", file=sys.stderr)
            return 1
    if args.json:
        print(json_format.MessageToJson(response, preserving_proto_field_name=True))
    else:
        print_response(response)
    return 0
