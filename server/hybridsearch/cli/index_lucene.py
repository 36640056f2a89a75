"""`hybridsearch index --sparse-backend lucene` / `--lucene-index DIR`: a Lucene-backed index."""

from __future__ import annotations

import argparse
from pathlib import Path

from hybridsearch.cli.build_encoder import build_encoder
from hybridsearch.sparse.lucene_index import DEFAULT_B, DEFAULT_K1

DEFAULT_LUCENE_THREADS = 2


def add_lucene_arguments(p: argparse.ArgumentParser) -> None:
    """The Lucene backend's flags of `hybridsearch index`."""
    p.add_argument(
        "--sparse-backend",
        choices=["tantivy", "lucene"],
        default="tantivy",
        help="BM25 side: tantivy (default) or Lucene through Anserini (the `lucene` extra)",
    )
    p.add_argument("--bm25-k1", type=float, default=DEFAULT_K1, help="Lucene BM25 k1")
    p.add_argument("--bm25-b", type=float, default=DEFAULT_B, help="Lucene BM25 b")
    p.add_argument(
        "--lucene-threads",
        type=int,
        default=DEFAULT_LUCENE_THREADS,
        help="Anserini indexer threads (lucene)",
    )


def run_index_lucene(args: argparse.Namespace) -> int:
    """Build a Lucene-backed index from a corpus, or attach an existing Lucene index."""
    from hybridsearch.cli.index import sample_corpus_path  # noqa: PLC0415 (a cycle)
    from hybridsearch.errors import BuildError  # noqa: PLC0415
    from hybridsearch.sparse.lucene_index import Bm25Params  # noqa: PLC0415
    from hybridsearch.storage.builder import check_source_outside  # noqa: PLC0415
    from hybridsearch.storage.corpus import ReadStats, read_corpus  # noqa: PLC0415
    from hybridsearch.storage.lucene_build import (  # noqa: PLC0415
        attach_lucene_index,
        build_lucene_index,
    )

    if args.empty or args.schema or args.shards is not None or args.ray is not None:
        raise BuildError(
            "--sparse-backend lucene builds a read-only index from a corpus (or attaches one): "
            "--empty, --schema, --shards and --ray are tantivy-only"
        )
    if args.dense_index != "exact":
        raise BuildError("--sparse-backend lucene: only --dense-index exact")
    if not (args.bm25_k1 >= 0 and 0 <= args.bm25_b <= 1):
        raise BuildError("--bm25-k1 must be >= 0 and --bm25-b within [0, 1]")
    if args.corpus:
        check_source_outside(Path(args.corpus), args.out)  # before the model loads
    encoder, encoder_info = build_encoder(args)
    bm25 = Bm25Params(k1=args.bm25_k1, b=args.bm25_b)
    stats = ReadStats()
    if args.lucene_index is not None:
        summary = attach_lucene_index(
            Path(args.lucene_index),
            args.out,
            encoder=encoder,
            encoder_info=encoder_info,
            force=args.force,
            batch_size=args.batch_size,
            bm25=bm25,
        )
        what = f"attached the Lucene index {args.lucene_index} ({summary.documents} documents)"
    else:
        corpus = sample_corpus_path() if args.sample else Path(args.corpus)
        docs = read_corpus(corpus, skip_bad_lines=args.skip_bad_lines, stats=stats)
        summary, empty = build_lucene_index(
            docs,
            args.out,
            encoder=encoder,
            encoder_info=encoder_info,
            force=args.force,
            batch_size=args.batch_size,
            bm25=bm25,
            threads=args.lucene_threads,
        )
        what = (
            f"indexed {summary.documents} documents with Anserini (left out with no text: {empty})"
        )
    print(
        f"{what} into {args.out} in {summary.seconds:.1f} s; "
        f"{summary.bytes_on_disk} bytes on disk; BM25 k1 {bm25.k1} b {bm25.b}; "
        f"vectors: {'yes' if summary.has_vectors else 'no'}; "
        f"duplicate ids replaced: {summary.duplicates}; bad lines skipped: {stats.bad_lines}"
    )
    return 0
