"""Chaos soak: mixed traffic against a writer and a follower, SIGKILL + restart of the writer.

For N minutes (default 30): hybrid searches at a steady rate (alternating writer and
follower), a stream of upserts (new ids and replacements) and deletes, a Compact call every
``--compact-every-s`` (plus the server's background policy), a follower server on the same
directory, and a SIGKILL + restart of the writer every ``--kill-every-s``. Afterwards it
checks, on both servers: every acknowledged document is searchable in both arms at its
acknowledged version, no acknowledged deletion is returned, and the follower agrees with the
writer; and that RSS and disk stay bounded. A write whose call failed (the writer was killed
during it) is "uncertain": either outcome is accepted for it, never a third.

Writes ``chaos-<label>.json``, ``chaos-<label>.md`` and ``chaos-<label>.png`` (RSS, disk and
p99 over time) into ``--out`` (bench/results/):

    PYTHONPATH=server python -m bench.chaos --model var/models/all-MiniLM-L6-v2 --minutes 30
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import platform
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from hybridsearch.harness import ServerProcess, start_server
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.v1 import index_pb2 as ipb
from hybridsearch.v1 import index_pb2_grpc, search_pb2_grpc
from hybridsearch.v1 import search_pb2 as pb

# Codes the server documents for this traffic: a writer being restarted is UNAVAILABLE,
# overload RESOURCE_EXHAUSTED, a slow call DEADLINE_EXCEEDED.
DOCUMENTED = {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
WORDS = [
    "river",
    "stone",
    "forest",
    "cloud",
    "engine",
    "signal",
    "copper",
    "violin",
    "harbor",
    "lantern",
    "meadow",
    "orbit",
]


def text_of(i: int, version: int, rng: random.Random) -> str:
    return f"uniq{i}v{version} common words " + " ".join(rng.choice(WORDS) for _ in range(20))


@dataclass
class Ledger:
    """What the writer acknowledged: id → version (None: deleted), and the uncertain ids."""

    state: dict[str, int | None] = field(default_factory=dict)
    uncertain: dict[str, set[int | None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settle(self, doc_id: str, value: int | None, acked: bool) -> None:
        with self.lock:
            if acked:
                self.state[doc_id] = value
                self.uncertain.pop(doc_id, None)
            else:  # either the old or the new value may have been committed
                options = self.uncertain.setdefault(doc_id, {self.state.get(doc_id)})
                options.add(value)


@dataclass
class Timeline:
    """Per-second samples: search latencies by server, codes, RSS, disk."""

    started: float = field(default_factory=time.monotonic)
    latencies: dict[int, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    write_codes: collections.Counter[str] = field(default_factory=collections.Counter)
    samples: list[dict[str, float]] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started


class Chaos:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.index = workdir / "index"
        self.rng = random.Random(args.seed)
        self.ledger = Ledger()
        self.timeline = Timeline()
        self.stop = threading.Event()
        self.writer: ServerProcess | None = None
        self.follower: ServerProcess | None = None
        self.writer_lock = threading.Lock()

    def serve_args(self) -> list[str]:
        return [
            "--index",
            str(self.index),
            "--model",
            str(self.args.model),
            "--compact-dead-fraction",
            "0.3",
            "--compact-min-dead-rows",
            "100",
            "--follow-interval-s",
            str(self.args.follow_interval_s),
        ]

    def start_writer(self) -> None:
        writer = start_server(*self.serve_args())
        writer.wait_serving()
        with self.writer_lock:
            self.writer = writer

    def writer_address(self) -> str | None:
        with self.writer_lock:
            return self.writer.address if self.writer is not None else None

    # --- traffic -------------------------------------------------------------------------
    def searches(self) -> None:
        interval = 1.0 / self.args.search_rate
        channels: dict[str, grpc.Channel] = {}
        next_at = time.monotonic()
        turn = 0
        while not self.stop.is_set():
            next_at += interval
            turn += 1
            assert self.follower is not None
            address = self.follower.address if turn % 2 else self.writer_address()
            if address is not None:
                channel = channels.get(address) or grpc.insecure_channel(address)
                channels[address] = channel
                stub = search_pb2_grpc.SearchServiceStub(channel)
                request = pb.SearchRequest(
                    query=f"{self.rng.choice(WORDS)} common", mode=pb.RETRIEVAL_MODE_HYBRID
                )
                started = time.perf_counter()
                try:
                    stub.Search(request, timeout=5.0)
                    code = "OK"
                except grpc.RpcError as exc:
                    code = exc.code().name
                elapsed_ms = (time.perf_counter() - started) * 1000
                self.timeline.codes[code] += 1
                if code == "OK":
                    self.timeline.latencies[int(self.timeline.now())].append(elapsed_ms)
            self.stop.wait(max(0.0, next_at - time.monotonic()))
        for channel in channels.values():
            channel.close()

    def writes(self) -> None:
        rng = random.Random(self.args.seed + 1)
        versions: dict[int, int] = {}
        while not self.stop.is_set():
            address = self.writer_address()
            if address is None:
                self.stop.wait(0.1)
                continue
            with grpc.insecure_channel(address) as channel:
                stub = index_pb2_grpc.IndexServiceStub(channel)
                if rng.random() < 0.75:
                    picks = rng.sample(range(self.args.ids), rng.randint(1, 10))
                    docs = []
                    for i in picks:
                        versions[i] = versions.get(i, 0) + 1
                        docs.append(ipb.Document(id=f"d{i}", text=text_of(i, versions[i], rng)))
                    batch = iter([ipb.UpsertDocumentsRequest(documents=docs)])
                    acked = self.call(stub.UpsertDocuments, batch, timeout=30)
                    for i in picks:
                        self.ledger.settle(f"d{i}", versions[i], acked)
                else:
                    ids = [f"d{i}" for i in rng.sample(range(self.args.ids), rng.randint(1, 5))]
                    request = ipb.DeleteDocumentsRequest(ids=ids)
                    acked = self.call(stub.DeleteDocuments, request, timeout=30)
                    for doc_id in ids:
                        self.ledger.settle(doc_id, None, acked)
            self.stop.wait(self.args.write_interval_s)

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> bool:
        """Make one write call; count its status; whether it was acknowledged."""
        try:
            fn(*args, **kwargs)
        except grpc.RpcError as exc:
            self.timeline.write_codes[exc.code().name] += 1
            return False
        self.timeline.write_codes["OK"] += 1
        return True

    def compactions(self) -> None:
        while not self.stop.wait(self.args.compact_every_s):
            address = self.writer_address()
            if address is None:
                continue
            with grpc.insecure_channel(address) as channel:
                stub = index_pb2_grpc.IndexServiceStub(channel)
                ok = self.call(stub.Compact, ipb.CompactRequest(), timeout=120)
            self.timeline.events.append(
                (self.timeline.now(), "compact" if ok else "compact-failed")
            )

    def kills(self) -> None:
        while not self.stop.wait(self.args.kill_every_s):
            with self.writer_lock:
                writer, self.writer = self.writer, None
            assert writer is not None
            writer.process.kill()
            writer.process.wait(timeout=60)
            if writer.process.stdout is not None:
                writer.process.stdout.close()
            self.timeline.events.append((self.timeline.now(), "SIGKILL writer"))
            self.start_writer()
            self.timeline.events.append((self.timeline.now(), "writer restarted"))

    def sampling(self) -> None:
        while not self.stop.wait(2.0):
            writer = self.writer
            assert self.follower is not None
            try:
                sample = {
                    "t_s": self.timeline.now(),
                    "writer_rss_mib": writer.rss_bytes() / 2**20 if writer else float("nan"),
                    "follower_rss_mib": self.follower.rss_bytes() / 2**20,
                    "disk_mib": dir_size_bytes(self.index) / 2**20,
                }
            except (OSError, RuntimeError):
                continue  # a file vanished under the walk (compaction) or the writer died
            self.timeline.samples.append(sample)

    # --- run and verify ------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from hybridsearch.cli.app import main as cli  # noqa: PLC0415

        code = cli(
            [
                "index",
                "--empty",
                "--out",
                str(self.index),
                "--model",
                str(self.args.model),
                "--no-progress",
            ]
        )
        assert code == 0
        self.start_writer()
        self.follower = start_server(*self.serve_args())
        self.follower.wait_serving()
        threads = [
            threading.Thread(target=t, daemon=True)
            for t in (self.searches, self.writes, self.compactions, self.kills, self.sampling)
        ]
        for thread in threads:
            thread.start()
        self.stop.wait(self.args.minutes * 60)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=300)
        verdict = self.verify()
        assert self.writer is not None
        self.writer.stop()
        self.follower.stop()
        return verdict

    def served_state(self, address: str) -> tuple[dict[str, str], set[str], set[str], int]:
        """(id → stored text, sparse ids, dense ids, generation) of one server."""
        with grpc.insecure_channel(address) as channel:
            search = search_pb2_grpc.SearchServiceStub(channel)
            index = index_pb2_grpc.IndexServiceStub(channel)
            sparse = search.Search(
                pb.SearchRequest(query="common", top_k=1000, mode=pb.RETRIEVAL_MODE_SPARSE)
            )
            dense = search.Search(
                pb.SearchRequest(query="common words", top_k=1000, mode=pb.RETRIEVAL_MODE_DENSE)
            )
            sparse_ids = {h.id for h in sparse.hits}
            texts = {
                doc_id: index.GetDocument(ipb.GetDocumentRequest(id=doc_id)).document.text
                for doc_id in sparse_ids
            }
            generation = index.GetIndexStats(ipb.GetIndexStatsRequest()).generation
            return texts, sparse_ids, {h.id for h in dense.hits}, generation

    def verify(self) -> dict[str, Any]:
        assert self.writer is not None and self.follower is not None
        writer_state = self.served_state(self.writer.address)
        deadline = time.monotonic() + 60
        follower_state = self.served_state(self.follower.address)
        while follower_state[3] < writer_state[3] and time.monotonic() < deadline:
            time.sleep(0.2)
            follower_state = self.served_state(self.follower.address)
        result: dict[str, Any] = {}
        for name, (texts, sparse_ids, dense_ids, generation) in (
            ("writer", writer_state),
            ("follower", follower_state),
        ):
            lost = wrong_version = deleted_returned = 0
            for doc_id in set(self.ledger.state) | set(self.ledger.uncertain):
                version = self.ledger.state.get(doc_id)
                options = self.ledger.uncertain.get(doc_id, {version})
                present = doc_id in sparse_ids and doc_id in dense_ids
                served_version = (
                    int(texts[doc_id].split()[0].split("v")[1]) if doc_id in texts else None
                )
                if served_version not in options:
                    if version is None and doc_id in sparse_ids | dense_ids:
                        deleted_returned += 1
                    elif version is not None and not present:
                        lost += 1
                    else:
                        wrong_version += 1
            result[name] = {
                "generation": generation,
                "documents": len(sparse_ids),
                "acknowledged_lost": lost,
                "deleted_returned": deleted_returned,
                "wrong_version": wrong_version,
                "arms_disagree": len(sparse_ids ^ dense_ids),
            }
        result["follower_agrees"] = writer_state[:3] == follower_state[:3]
        return result


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


def write_report(chaos: Chaos, verdict: dict[str, Any], out: Path, label: str) -> None:
    tl = chaos.timeline
    windows = sorted({second // 10 for second in tl.latencies})
    p99_series = [
        (w * 10, p99([v for s in range(w * 10, w * 10 + 10) for v in tl.latencies.get(s, [])]))
        for w in windows
    ]
    rss = [s["writer_rss_mib"] for s in tl.samples if s["writer_rss_mib"] == s["writer_rss_mib"]]
    disk = [s["disk_mib"] for s in tl.samples]
    other_errors = sum(
        n
        for code, n in (tl.codes + tl.write_codes).items()
        if code != "OK" and code not in DOCUMENTED
    )
    summary = {
        "label": label,
        "date": datetime.date.today().isoformat(),
        "host": platform.node(),
        "settings": {k: str(v) for k, v in vars(chaos.args).items()},
        "verdict": verdict,
        "search_codes": dict(tl.codes),
        "write_codes": dict(tl.write_codes),
        "errors_other_than_documented": other_errors,
        "events": tl.events,
        "writer_rss_mib": {"first": rss[0], "max": max(rss), "last": rss[-1]} if rss else {},
        "disk_mib": {"first": disk[0], "max": max(disk), "last": disk[-1]} if disk else {},
        "p99_ms_per_10s": p99_series,
        "samples": tl.samples,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"chaos-{label}.json").write_text(json.dumps(summary, indent=2) + "\n")
    _plot(summary, out / f"chaos-{label}.png")
    lines = [
        f"# Chaos soak — {label}",
        "",
        f"{chaos.args.minutes} minutes on {summary['host']} ({summary['date']}): "
        "hybrid searches at "
        f"{chaos.args.search_rate}/s alternating writer and follower, an upsert/delete every "
        f"{chaos.args.write_interval_s} s over {chaos.args.ids} ids, Compact every "
        f"{chaos.args.compact_every_s} s (plus the background policy), SIGKILL + restart of "
        f"the writer every {chaos.args.kill_every_s} s, follower interval "
        f"{chaos.args.follow_interval_s} s. Command: `PYTHONPATH=server python -m bench.chaos "
        f"--minutes {chaos.args.minutes} ...` (settings in the JSON).",
        "",
        "| check | writer | follower |",
        "|---|---|---|",
    ]
    for key in (
        "acknowledged_lost",
        "deleted_returned",
        "wrong_version",
        "arms_disagree",
        "documents",
        "generation",
    ):
        lines.append(f"| {key} | {verdict['writer'][key]} | {verdict['follower'][key]} |")
    lines += [
        "",
        f"- follower agrees with the writer: **{verdict['follower_agrees']}**",
        f"- errors other than the documented codes ({', '.join(sorted(DOCUMENTED))}): "
        f"**{other_errors}**",
        f"- search codes: {dict(tl.codes)}; write codes: {dict(tl.write_codes)}",
        f"- events: {len([e for e in tl.events if e[1] == 'SIGKILL writer'])} SIGKILLs, "
        f"{len([e for e in tl.events if e[1] == 'compact'])} Compact calls",
        f"- writer RSS MiB (first/max/last): {summary['writer_rss_mib']}",
        f"- index disk MiB (first/max/last): {summary['disk_mib']}",
        f"- overall search p99: {p99([v for vs in tl.latencies.values() for v in vs]):.1f} ms",
        "",
        f"![RSS, disk and p99 over time](chaos-{label}.png)",
        "",
    ]
    (out / f"chaos-{label}.md").write_text("\n".join(lines))


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    samples = summary["samples"]
    t = [s["t_s"] for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    axes[0].plot(t, [s["writer_rss_mib"] for s in samples], label="writer")
    axes[0].plot(t, [s["follower_rss_mib"] for s in samples], label="follower")
    axes[0].set_ylabel("RSS (MiB)")
    axes[0].legend()
    axes[1].plot(t, [s["disk_mib"] for s in samples])
    axes[1].set_ylabel("index on disk (MiB)")
    series = summary["p99_ms_per_10s"]
    axes[2].plot([x for x, _ in series], [y for _, y in series], marker=".")
    axes[2].set_ylabel("search p99 (ms, 10 s windows)")
    axes[2].set_xlabel("seconds")
    for when, what in summary["events"]:
        if what == "SIGKILL writer":
            for ax in axes:
                ax.axvline(when, color="red", alpha=0.3)
    fig.suptitle(f"chaos soak {summary['label']} (red: SIGKILL of the writer)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("var/models/all-MiniLM-L6-v2"))
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--search-rate", type=float, default=10.0, help="searches per second")
    parser.add_argument("--write-interval-s", type=float, default=0.2)
    parser.add_argument("--ids", type=int, default=600, help="id space of the writes")
    parser.add_argument("--compact-every-s", type=float, default=45.0)
    parser.add_argument("--kill-every-s", type=float, default=180.0)
    parser.add_argument("--follow-interval-s", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--label", default=datetime.date.today().isoformat())
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    try:
        chaos = Chaos(args, workdir)
        verdict = chaos.run()
        write_report(chaos, verdict, args.out, args.label)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(verdict, indent=2))
    ok = all(
        verdict[s][k] == 0
        for s in ("writer", "follower")
        for k in ("acknowledged_lost", "deleted_returned", "wrong_version", "arms_disagree")
    )
    return 0 if ok and verdict["follower_agrees"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
