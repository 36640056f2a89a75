"""Indexing documents/s against the raw encoder's best batch throughput, on the same cores.

In one run, rounds taking turns (a slow spell of a shared machine hits every figure alike):
- the raw encoder: `OnnxEncoder.encode_documents` over the documents' texts at each
  ``--batch-sizes`` (warm session, in this process): the ceiling is its best batch size;
- `hybridsearch index` of the same documents (a fresh process: read, BM25, encode, write;
  the build's own seconds, as its summary line prints them);
- with ``--baseline REF``, the same command from an older commit's ``server/`` (extracted
  with `git archive`; the two builds alternate going first), and the lowest cosine between
  the two builds' vectors of each id.

    python -m bench.index_throughput [--collection cranfield] [--docs 1400] [--rounds 4]
        [--batch-sizes 16,32,64,128] [--baseline 06f823e] [--device cpu]

Writes bench/results/<date>-index-throughput.md and bench/.work/measurements/
index_throughput.json. Timing lives here, never in tests.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from bench.common import REPO, RESULTS, WORK, env_summary
from hybridsearch.engine.loader import load_query_encoder
from hybridsearch.storage.index_dir import open_index
from hybridsearch.types import Device

SECONDS = re.compile(r"indexed (\d+) documents into .* in ([0-9.]+) s")


@dataclass
class Samples:
    """One figure's rounds: wall seconds and CPU seconds of each."""

    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    def rate(self, docs: int) -> float:
        """Documents/s of the median round."""
        return docs / float(np.median(self.seconds))

    def cpu_ms_per_doc(self, docs: int) -> float:
        """CPU ms per document of the median round."""
        return 1000 * float(np.median(self.cpu_seconds)) / docs


def write_subset(source: Path, docs: int, out: Path) -> int:
    """The first ``docs`` lines of a BEIR corpus into ``out``; how many there were."""
    with source.open(encoding="utf-8") as lines:
        kept = list(islice(lines, docs))
    out.write_text("".join(kept), encoding="utf-8")
    return len(kept)


def baseline_tree(ref: str, work: Path) -> Path:
    """``server/`` of commit ``ref``, extracted once under ``work``."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", ref],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    tree = work / f"baseline-{commit}"
    if not (tree / "server").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", commit, "server"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree / "server"


def timed_index(
    server_dir: Path, corpus: Path, out: Path, *, model: Path, device: str, batch_size: int
) -> tuple[float, float]:
    """(build seconds from the summary line, CPU seconds of the process) of one `index`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "hybridsearch.cli", "index", "--corpus", str(corpus),
         "--out", str(out), "--model", str(model), "--device", device,
         "--batch-size", str(batch_size), "--no-progress", "--force"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(server_dir)},
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"index failed ({server_dir}):\n{done.stderr[-3000:]}")
    match = SECONDS.search(done.stdout)
    if match is None:
        raise RuntimeError(f"no summary line in: {done.stdout!r}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return float(match.group(2)), cpu


def cosine_by_id(left: Path, right: Path) -> tuple[float, float]:
    """(lowest cosine, largest absolute difference) of the vectors of each id in both."""
    a, b = open_index(left), open_index(right)
    assert a.vectors is not None and b.vectors is not None
    row = {doc_id: i for i, doc_id in enumerate(b.ids)}
    x = np.asarray(a.vectors[:], dtype=np.float64)
    y = np.asarray(b.vectors[:], dtype=np.float64)[[row[i] for i in a.ids]]
    cos = np.sum(x * y, axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    return float(cos.min()), float(np.abs(x - y).max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "var/models/all-MiniLM-L6-v2")
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--collection", default="cranfield")
    parser.add_argument("--docs", type=int, default=1400)
    parser.add_argument("--rounds", type=int, default=4, help="even: builds alternate first")
    parser.add_argument("--batch-sizes", default="16,32,64,128")
    parser.add_argument("--index-batch-size", type=int, default=32, help="`index --batch-size`")
    parser.add_argument("--baseline", default="", help="also build with this commit's server/")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    model = args.model.resolve()
    sizes = [int(s) for s in args.batch_sizes.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="index-throughput-"))
    corpus = work / "corpus.jsonl"
    docs = write_subset(args.shared_data / args.collection / "corpus.jsonl", args.docs, corpus)
    texts = [
        f"{row.get('title', '')} {row.get('text', '')}".strip()
        for row in map(json.loads, corpus.read_text(encoding="utf-8").splitlines())
    ]
    env = env_summary()
    encoder = load_query_encoder(model, Device(args.device))
    tokens = int(encoder.document_token_lengths(texts).sum())
    encoder.encode_documents(texts[:64], batch_size=32)  # warm-up
    builds = {"new": REPO / "server"}
    if args.baseline:
        builds["baseline"] = baseline_tree(args.baseline, WORK)
    raw = {size: Samples() for size in sizes}
    index = {name: Samples() for name in builds}
    try:
        for round_ in range(1, args.rounds + 1):
            for size in sizes:
                cpu, start = time.process_time(), time.perf_counter()
                encoder.encode_documents(texts, batch_size=size)
                raw[size].seconds.append(time.perf_counter() - start)
                raw[size].cpu_seconds.append(time.process_time() - cpu)
                print(f"   round {round_} raw encoder batch {size}: "
                      f"{docs / raw[size].seconds[-1]:.1f} docs/s", flush=True)  # fmt: skip
            # The builds take turns going first: a machine that quietens (or fills) during
            # a round favours neither.
            names = list(builds)
            if round_ % 2 == 0:
                names.reverse()
            for name in names:
                server_dir = builds[name]
                seconds, cpu = timed_index(
                    server_dir, corpus, work / name,
                    model=model, device=args.device, batch_size=args.index_batch_size,
                )  # fmt: skip
                index[name].seconds.append(seconds)
                index[name].cpu_seconds.append(cpu)
                print(f"   round {round_} index ({name}): {docs / seconds:.1f} docs/s "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        agreement = cosine_by_id(work / "new", work / "baseline") if args.baseline else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = max(sizes, key=lambda s: raw[s].rate(docs))
    ceiling = raw[best].rate(docs)
    result = {
        "env": env,
        "collection": args.collection,
        "docs": docs,
        "tokens": tokens,
        "device": args.device,
        "provider": encoder.provider,
        "rounds": args.rounds,
        "raw": {str(s): {"docs_per_s": raw[s].rate(docs), **raw[s].__dict__} for s in sizes},
        "best_batch": best,
        "ceiling_docs_per_s": ceiling,
        "index": {
            n: {
                "docs_per_s": index[n].rate(docs),
                "cpu_ms_per_doc": index[n].cpu_ms_per_doc(docs),
                **index[n].__dict__,
            }
            for n in index
        },
        "baseline": args.baseline,
        "min_cosine_vs_baseline": None if agreement is None else agreement[0],
        "max_abs_diff_vs_baseline": None if agreement is None else agreement[1],
    }
    (WORK / "measurements").mkdir(parents=True, exist_ok=True)
    (WORK / "measurements" / "index_throughput.json").write_text(json.dumps(result, indent=2))
    path = write_report(result)
    print(f"== results: {path}", flush=True)
    return 0


def by_round(figures: dict[str, float], docs: int) -> str:
    """Each round's documents/s, in order."""
    seconds: list[float] = figures["seconds"]  # type: ignore[assignment]
    return ", ".join(f"{docs / s:.1f}" for s in seconds)


def write_report(result: dict[str, object]) -> Path:
    """bench/results/<date>-index-throughput.md from one run's figures."""
    env: dict[str, str] = result["env"]  # type: ignore[assignment]
    docs: int = result["docs"]  # type: ignore[assignment]
    raw: dict[str, dict[str, float]] = result["raw"]  # type: ignore[assignment]
    index: dict[str, dict[str, float]] = result["index"]  # type: ignore[assignment]
    ceiling: float = result["ceiling_docs_per_s"]  # type: ignore[assignment]
    lines = [
        f"# Indexing throughput vs the raw encoder — {datetime.date.today()}",
        "",
        f"{str(result['collection']).capitalize()}, first {docs} documents "
        f"({result['tokens']} tokens), default model, device {result['device']} "
        f"({result['provider']}), {env['cpus']} CPUs ({env['cpu']}), commit {env['commit']}, "
        f"load average at start {env['load_avg_at_start']}; {result['rounds']} rounds taking "
        "turns, medians. `python -m bench.index_throughput`",
        "",
        "| what | documents/s | CPU ms/document | documents/s by round |",
        "|---|---:|---:|---|",
    ]
    for size, figures in raw.items():
        mark = " (best)" if int(size) == result["best_batch"] else ""
        cpu_ms = 1000 * float(np.median(figures["cpu_seconds"])) / docs
        lines.append(
            f"| raw encoder, batch {size}{mark} | {figures['docs_per_s']:.1f} | {cpu_ms:.1f} "
            f"| {by_round(figures, docs)} |"
        )
    names = {"new": "`hybridsearch index` (this commit)",
             "baseline": f"`hybridsearch index` ({result['baseline']})"}  # fmt: skip
    for name, figures in index.items():
        lines.append(
            f"| {names[name]} | {figures['docs_per_s']:.1f} | {figures['cpu_ms_per_doc']:.1f} "
            f"| {by_round(figures, docs)} |"
        )
    lines += [
        "",
        f"Indexing / raw encoder ceiling: **{index['new']['docs_per_s'] / ceiling:.0%}** "
        "(target ≥ 80 %).",
    ]
    if "baseline" in index:
        lines.append(
            f"This commit / {result['baseline']}: "
            f"**{index['new']['docs_per_s'] / index['baseline']['docs_per_s']:.2f}×** "
            f"documents/s; lowest cosine between the two builds' vectors of an id "
            f"{result['min_cosine_vs_baseline']:.7f} (largest absolute difference "
            f"{result['max_abs_diff_vs_baseline']:.1e})."
        )
    lines += [
        "",
        "The raw encoder is measured warm in the bench process; `index` runs in a fresh "
        "process and its figure is the build's own time (reading, BM25, encoding, writes; "
        "not the model load). CPU ms/document of `index` is the whole process's.",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{datetime.date.today()}-index-throughput.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[4:]), flush=True)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
