"""An alias switched back and forth under ghz load: zero failed requests required.

Serves a data directory with two collections of different schemas (the bundled Cranfield
sample indexed twice: BM25-only by default, hybrid with ``--model``), points the alias
``live`` at one, runs ghz against `Search` naming ``live``, and moves the alias between the
two collections every ``--switch-every-s`` seconds through `UpdateAliases` while ghz runs.
Writes the ghz report and a summary to ``bench/results/<date>-alias-switch.{json,md}``.

    PYTHONPATH=server python -m bench.alias_switch [--model DIR] [--duration-s 30]
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import grpc

from bench.common import RESULTS, env_summary, sample_queries
from bench.load import SEARCH, LoadPoint, run_ghz
from hybridsearch.harness import start_server
from hybridsearch.storage.corpus import read_corpus
from hybridsearch.v1 import collection_pb2 as cpb
from hybridsearch.v1 import collection_pb2_grpc, index_pb2_grpc
from hybridsearch.v1 import index_pb2 as ipb

CORPUS = Path(__file__).parent.parent / "server/hybridsearch/data/cranfield-corpus.jsonl.gz"
SCHEMAS = {
    "cranfield-a": cpb.CollectionSchema(
        fields=[cpb.MetadataField(name="tenant", type=cpb.METADATA_TYPE_KEYWORD)]
    ),
    "cranfield-b": cpb.CollectionSchema(
        fields=[
            cpb.MetadataField(name="year", type=cpb.METADATA_TYPE_INTEGER),
            cpb.MetadataField(name="tags", type=cpb.METADATA_TYPE_KEYWORD, multi_valued=True),
        ]
    ),
}


def batches(size: int = 200) -> Iterator[ipb.UpsertDocumentsRequest]:
    docs = read_corpus(CORPUS)
    while chunk := list(islice(docs, size)):
        yield ipb.UpsertDocumentsRequest(
            documents=[ipb.Document(id=d.id, title=d.title, text=d.text) for d in chunk]
        )


def fill(channel: grpc.Channel, model: str) -> None:
    """Create both collections and index the corpus into each."""
    collections = collection_pb2_grpc.CollectionServiceStub(channel)
    index = index_pb2_grpc.IndexServiceStub(channel)
    for name, schema in SCHEMAS.items():
        collections.CreateCollection(
            cpb.CreateCollectionRequest(name=name, schema=schema, model=model)
        )
        requests = list(batches())
        for request in requests:
            request.collection = name
        index.UpsertDocuments(iter(requests), timeout=600)


def switch_aliases(
    channel: grpc.Channel, stop: threading.Event, every_s: float, switches: list[float]
) -> None:
    """Move ``live`` between the two collections until ``stop``; record each switch's time."""
    stub = collection_pb2_grpc.CollectionServiceStub(channel)
    names = list(SCHEMAS)
    turn = 1
    while not stop.wait(every_s):
        target = names[turn % 2]
        action = cpb.AliasAction(add=cpb.AddAlias(alias="live", collection=target))
        started = time.perf_counter()
        stub.UpdateAliases(cpb.UpdateAliasesRequest(actions=[action]), timeout=30)
        switches.append((time.perf_counter() - started) * 1000)
        turn += 1


def table(point: LoadPoint, switches: list[float]) -> str:
    """The results row (markdown)."""
    codes = json.dumps(point.error_kinds) if point.errors else "all OK"
    switch_p50 = sorted(switches)[len(switches) // 2] if switches else 0.0
    head = "| requests | failed | status codes | QPS | p50 ms | p95 ms | p99 ms | switches |"
    row = (
        f"| {point.requests} | {point.errors} | {codes} | {point.qps:.0f} | "
        f"{point.p50_ms:.2f} | {point.p95_ms:.2f} | {point.p99_ms:.2f} | "
        f"{len(switches)} (UpdateAliases p50 {switch_p50:.1f} ms) |"
    )
    return "\n".join([head, "|---:|---:|---|---:|---:|---:|---:|---:|", row])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="model directory: hybrid collections")
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--switch-every-s", type=float, default=1.0)
    args = parser.parse_args()
    mode = "RETRIEVAL_MODE_HYBRID" if args.model else "RETRIEVAL_MODE_SPARSE"
    day = datetime.date.today().isoformat()
    work = Path(tempfile.mkdtemp(prefix="alias-switch-"))
    model_args = ["--model", str(args.model)] if args.model else []
    server = start_server("--data-dir", str(work / "data"), *model_args, "--log-level", "WARNING")
    try:
        server.wait_serving(timeout=600)
        with grpc.insecure_channel(server.address) as channel:
            fill(channel, "default" if args.model else "")
            collections = collection_pb2_grpc.CollectionServiceStub(channel)
            first = cpb.AliasAction(add=cpb.AddAlias(alias="live", collection="cranfield-a"))
            collections.UpdateAliases(cpb.UpdateAliasesRequest(actions=[first]))
            data = [
                {"query": q, "top_k": 10, "mode": mode, "collection": "live"}
                for q in sample_queries()
            ]
            stop = threading.Event()
            switches: list[float] = []
            switcher = threading.Thread(
                target=switch_aliases, args=(channel, stop, args.switch_every_s, switches)
            )
            switcher.start()
            try:
                point = run_ghz(
                    server.address,
                    "alias-switch",
                    SEARCH,
                    data,
                    concurrency=args.concurrency,
                    duration_s=args.duration_s,
                    work=work,
                )
            finally:
                stop.set()
                switcher.join()
    finally:
        server.stop()
    report = work / f"alias-switch-c{args.concurrency}.json"
    RESULTS.mkdir(exist_ok=True)
    kept = json.loads(report.read_text())
    kept.pop("details", None)  # one entry per request (MBs): the summary fields stay
    if isinstance(kept.get("options"), dict):
        kept["options"].pop("data", None)
    (RESULTS / f"{day}-alias-switch.json").write_text(json.dumps(kept, indent=2) + "\n")
    env = env_summary()
    summary = f"""# Alias switched under load ({day})

`python -m bench.alias_switch{" --model " + args.model.name if args.model else ""} \
--duration-s {args.duration_s:g} --concurrency {args.concurrency} \
--switch-every-s {args.switch_every_s:g}`

Two collections with different schemas (`cranfield-a`: `tenant` keyword; `cranfield-b`:
`year` integer, `tags` multi-valued keyword), each the 1,400 Cranfield documents
({"hybrid, " + args.model.name if args.model else "BM25-only"}). ghz ran `Search` with
`collection: "live"` ({mode}, top 10, the 225 Cranfield queries round robin) for
{args.duration_s:g} s at concurrency {args.concurrency}, while `UpdateAliases` moved `live`
between the two every {args.switch_every_s:g} s.

{table(point, switches)}

**{"PASS" if point.errors == 0 and switches else "FAIL"}**: zero failed requests required.
ghz report (less its per-request details): `{day}-alias-switch.json`.
Machine: {env["cpus"]} CPUs ({env["cpu"]}), load at start {env["load_avg_at_start"]},
commit {env["commit"]}; ghz shares the machine.
"""
    (RESULTS / f"{day}-alias-switch.md").write_text(summary)
    print(summary)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if point.errors == 0 and switches else 1


if __name__ == "__main__":
    raise SystemExit(main())
