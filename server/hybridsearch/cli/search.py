"""`hybridsearch search`: query a running server and print ranked hits."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from hybridsearch.cli.channel import add_channel_arguments, call_and_print, call_metadata
from hybridsearch.cli.flag_types import UINT32_MAX, int_in_range, timeout_seconds
from hybridsearch.errors import HybridSearchError

if TYPE_CHECKING:
    from hybridsearch.v1 import search_pb2 as pb

MODES = ("hybrid", "dense", "sparse")
FUSIONS = ("interpolation", "rrf", "adaptive")


def add_search_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``search``."""
    p = commands.add_parser("search", help="query a running server")
    p.add_argument("query", help="query text")
    add_channel_arguments(p)
    p.add_argument("--top-k", type=int_in_range(1, UINT32_MAX), default=10)
    p.add_argument(
        "--offset", type=int_in_range(0, UINT32_MAX), default=0, help="hits to skip (the next page)"
    )
    p.add_argument("--mode", choices=MODES, default="hybrid")
    p.add_argument("--collection", default="", help="collection or alias (default: the default)")
    p.add_argument(
        "--filter",
        metavar="JSON",
        help='a Filter message as JSON, e.g. \'{"must": [{"match": {"field": "tenant", '
        '"any": [{"keyword": "t42"}]}}]}\' (proto3 JSON of hybridsearch.v1.Filter)',
    )
    p.add_argument("--fusion", choices=FUSIONS, help="fusion method")
    p.add_argument("--alpha", type=float, help="weight of the dense side")
    p.add_argument("--explain", action="store_true", help="show each arm's scores and ranks")
    p.add_argument(
        "--highlight",
        action="store_true",
        help="show snippets of each hit with the query's terms [marked]",
    )
    p.add_argument("--json", action="store_true", help="print the response as JSON")
    p.add_argument("--timeout", type=timeout_seconds, default=30.0, help="deadline in seconds")
    p.set_defaults(func=run_search)


def build_request(args: argparse.Namespace) -> pb.SearchRequest:
    """The SearchRequest the command's flags describe."""
    from hybridsearch.v1 import search_pb2 as pb  # noqa: PLC0415

    request = pb.SearchRequest(
        query=args.query,
        top_k=args.top_k,
        mode=pb.RetrievalMode.Value(f"RETRIEVAL_MODE_{args.mode.upper()}"),
        explain=args.explain,
        return_fields=[pb.STORED_FIELD_TITLE],
        offset=args.offset,
        collection=args.collection,
    )
    if args.highlight:
        request.highlight.enabled = True
    if args.filter:
        from google.protobuf import json_format  # noqa: PLC0415

        try:
            json_format.Parse(args.filter, request.filter)
        except json_format.ParseError as exc:
            raise HybridSearchError(f"--filter: not a Filter message in JSON ({exc})") from None
    if args.fusion:
        request.fusion.method = pb.FusionMethod.Value(f"FUSION_METHOD_{args.fusion.upper()}")
    if args.alpha is not None:
        request.fusion.alpha = args.alpha
    return request


def _format_arm(arm: pb.ArmScore | None) -> str:
    if arm is None:
        return "-"
    return f"#{arm.rank} raw {arm.raw_score:.4f} norm {arm.normalized_score:.4f}"


def marked_snippet(highlight: pb.Highlight) -> str:
    """The snippet with each match put in brackets, on one line."""
    snippet = highlight.snippet
    parts, at = [], 0
    for span in highlight.matches:
        parts += [snippet[at : span.start], "[", snippet[span.start : span.end], "]"]
        at = span.end
    parts.append(snippet[at:])
    return " ".join("".join(parts).split())


def print_response(response: pb.SearchResponse) -> None:
    """Human-readable hits (with their highlights) and timings."""
    from hybridsearch.v1 import search_pb2  # noqa: PLC0415

    for hit in response.hits:
        title = (hit.title or "").replace("\n", " ")[:80]
        print(f"{hit.rank:>4}  {hit.id:<16} {hit.score:10.4f}  {title}")
        if hit.HasField("explanation"):
            e = hit.explanation
            sparse = e.sparse if e.HasField("sparse") else None
            dense = e.dense if e.HasField("dense") else None
            print(f"        sparse {_format_arm(sparse)} | dense {_format_arm(dense)}")
        for highlight in hit.highlights:
            field = "title" if highlight.field == search_pb2.STORED_FIELD_TITLE else "text"
            print(f"        {field}: {marked_snippet(highlight)}")
    if response.HasField("adaptive_fusion"):
        chosen = response.adaptive_fusion
        features = ", ".join(f"{f.name} {f.value:.3f}" for f in chosen.features)
        print(f"-- adaptive fusion: alpha {chosen.alpha:.3f} from {features}")
    t = response.timings
    print(
        f"-- {len(response.hits)} hits; total {t.total_us} us (encode {t.encode_us}, "
        f"dense {t.dense_us}, sparse {t.sparse_us}, fusion {t.fusion_us}, fetch {t.fetch_us})"
    )


def run_search(args: argparse.Namespace) -> int:
    """Send one query; print the hits (or the error and its field violations)."""
    from hybridsearch.v1 import search_pb2_grpc  # noqa: PLC0415

    def search(channel: Any) -> Any:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        return stub.Search(build_request(args), timeout=args.timeout, metadata=call_metadata(args))

    return call_and_print(args, search, print_response)
