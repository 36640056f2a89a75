"""TREC run files: ``qid Q0 docid rank score tag``, one line per retrieved document."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

_COLUMNS = 6


def ranked(docs: Mapping[str, float]) -> list[tuple[str, float]]:
    """A query's documents by score descending; equal scores keep their given order."""
    return sorted(docs.items(), key=lambda item: -item[1])


def write_trec_run(
    path: str | Path, run: Mapping[str, Mapping[str, float]], *, tag: str = "hybridsearch"
) -> None:
    """Write a run, queries in the given order, documents ranked by :func:`ranked` (rank 1
    first). Scores are written with ``repr`` so reading them back gives the same floats."""
    if not tag or any(c.isspace() for c in tag):
        raise ValueError(f"run tag must be a non-empty word, got {tag!r}")
    with Path(path).open("w", encoding="utf-8") as out:
        for qid, docs in run.items():
            for rank, (docid, score) in enumerate(ranked(docs), start=1):
                out.write(f"{qid} Q0 {docid} {rank} {float(score)!r} {tag}\n")


def read_trec_run(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a run: qid → {docid: score}, each query's documents in file rank order.

    Raises:
        ValueError: a malformed line or a document listed twice for a query (file:line).
    """
    source = Path(path)
    lines: dict[str, list[tuple[int, str, float]]] = {}
    seen: dict[str, set[str]] = {}
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != _COLUMNS:
            raise ValueError(f"{source}:{number}: expected 6 columns, found {len(fields)}")
        qid, _, docid, rank, score, _ = fields
        try:
            entry = (int(rank), docid, float(score))
        except ValueError as exc:
            raise ValueError(f"{source}:{number}: bad rank or score ({exc})") from exc
        if docid in seen.setdefault(qid, set()):
            raise ValueError(f"{source}:{number}: document {docid!r} repeated for {qid!r}")
        seen[qid].add(docid)
        lines.setdefault(qid, []).append(entry)
    return {
        qid: {docid: score for _, docid, score in sorted(entries, key=lambda e: e[0])}
        for qid, entries in lines.items()
    }
