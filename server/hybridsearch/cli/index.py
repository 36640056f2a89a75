"""`hybridsearch index`: build an index directory from a corpus (or an empty one)."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from hybridsearch.cli.build_encoder import build_encoder
from hybridsearch.cli.flag_types import int_in_range, nonempty_text, path_arg, positive_int
from hybridsearch.cli.index_lucene import (
    DEFAULT_LUCENE_THREADS,
    add_lucene_arguments,
    run_index_lucene,
)
from hybridsearch.cli.index_sharded import (
    DEFAULT_RAY_ENCODER_CPUS,
    add_sharding_arguments,
    run_index_sharded,
)
from hybridsearch.dense.hnsw import MAX_EF_CONSTRUCTION, MAX_M, MIN_M
from hybridsearch.errors import SetupError
from hybridsearch.progress import bar_options
from hybridsearch.sparse.lucene_index import DEFAULT_B, DEFAULT_K1
from hybridsearch.types import Device

SAMPLE_CORPUS = "cranfield-corpus.jsonl.gz"


def sample_corpus_path() -> Path:
    """The bundled sample corpus (Cranfield, gzip)."""
    return Path(str(resources.files("hybridsearch") / "data" / SAMPLE_CORPUS))


def add_index_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("index", help="build an index from a corpus")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--corpus",
        type=nonempty_text,
        help="BEIR corpus.jsonl or Pyserini JsonCollection (.gz ok); with --ray also Parquet, "
        "and any filesystem pyarrow opens (s3://...)",
    )
    source.add_argument(
        "--sample", action="store_true", help="the bundled sample corpus (Cranfield)"
    )
    source.add_argument(
        "--empty",
        action="store_true",
        help="no documents: an empty index to fill through `hybridsearch ingest`",
    )
    source.add_argument(
        "--lucene-index",
        type=Path,
        help="attach an existing Pyserini/Anserini Lucene index directory (implies "
        "--sparse-backend lucene; vectors from its stored documents)",
    )
    p.add_argument("--out", type=path_arg, required=True, help="index directory to create")
    p.add_argument(
        "--model", type=Path, help="model directory of the dense encoder (default: MiniLM)"
    )
    p.add_argument("--no-dense", action="store_true", help="BM25 only: no vectors")
    p.add_argument("--force", action="store_true", help="replace an existing index at --out")
    p.add_argument("--skip-bad-lines", action="store_true", help="skip and count malformed lines")
    p.add_argument("--batch-size", type=positive_int, default=32, help="documents per encoder run")
    p.add_argument("--max-length", type=int, help="token limit per document (default: model's)")
    p.add_argument("--device", type=Device, default=Device.AUTO, help="auto, cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--dense-index",
        choices=["exact", "hnsw"],
        default="exact",
        help="exact inner product (default) or an HNSW graph (approximate; needs faiss)",
    )
    p.add_argument(
        "--schema",
        type=Path,
        help="JSON or TOML file declaring the filterable metadata fields (see the README)",
    )
    p.add_argument(
        "--hnsw-m",
        type=int_in_range(MIN_M, MAX_M),
        default=32,
        help=f"HNSW graph degree ({MIN_M} to {MAX_M}; faiss advises 4 to 64)",
    )
    p.add_argument(
        "--hnsw-ef-construction",
        type=int_in_range(1, MAX_EF_CONSTRUCTION),
        default=200,
        help=f"HNSW build candidate list (1 to {MAX_EF_CONSTRUCTION})",
    )
    add_lucene_arguments(p)
    add_sharding_arguments(p)
    p.set_defaults(func=run_index)


def check_flag_conflicts(args: argparse.Namespace) -> None:
    """Refuse a flag this build would ignore, naming it (a build other than the one asked
    for, reported as a success, is worse than an error): a model or an HNSW graph with
    ``--no-dense``, the Lucene backend's BM25 flags with tantivy's, Ray's flags without
    ``--ray``. `SetupError` (exit 2)."""
    if args.no_dense and args.model is not None:
        raise SetupError("--model has no use with --no-dense (BM25 only); drop one of them")
    if args.no_dense and args.dense_index == "hnsw":
        raise SetupError("--dense-index hnsw needs vectors; drop --no-dense")
    if args.sparse_backend != "lucene" and args.lucene_index is None:
        lucene_only = (
            ("--bm25-k1", args.bm25_k1, DEFAULT_K1),
            ("--bm25-b", args.bm25_b, DEFAULT_B),
            ("--lucene-threads", args.lucene_threads, DEFAULT_LUCENE_THREADS),
        )
        for flag, value, default in lucene_only:
            if not value == default:  # NaN too
                raise SetupError(
                    f"{flag} applies to --sparse-backend lucene only (tantivy's BM25 has k1 "
                    "1.2 and b 0.75)"
                )
    if args.ray is None:
        if args.ray_encoders is not None:
            raise SetupError("--ray-encoders needs --ray")
        if not args.ray_encoder_cpus == DEFAULT_RAY_ENCODER_CPUS:
            raise SetupError("--ray-encoder-cpus needs --ray")


def run_index(args: argparse.Namespace) -> int:
    check_flag_conflicts(args)
    if args.sparse_backend == "lucene" or args.lucene_index is not None:
        return run_index_lucene(args)
    if args.ray is not None or args.shards is not None:
        return run_index_sharded(args)
    from tqdm import tqdm  # noqa: PLC0415

    from hybridsearch.dense.hnsw import HnswParams  # noqa: PLC0415 (faiss itself loads lazily)
    from hybridsearch.dense.select import DenseIndexKind  # noqa: PLC0415
    from hybridsearch.metadata.schema import CollectionSchema, load_schema_file  # noqa: PLC0415
    from hybridsearch.storage.builder import build_index, check_source_outside  # noqa: PLC0415
    from hybridsearch.storage.corpus import ReadStats, count_lines, read_corpus  # noqa: PLC0415

    corpus = sample_corpus_path() if args.sample else Path(args.corpus or ".")  # --empty: none
    if args.corpus:
        check_source_outside(corpus, args.out)  # before the model loads
    schema = load_schema_file(args.schema) if args.schema else CollectionSchema()
    encoder, encoder_info = build_encoder(args)
    total = 0 if args.empty else count_lines(corpus)
    stats = ReadStats()
    quiet = args.no_progress
    # BM25 and encoding run at once (the encoder on its own thread): two bars, each with its
    # documents/s; the encoder's total is known once the corpus is read.
    with (
        tqdm(total=total, desc="reading + BM25", unit="doc", **bar_options(quiet)) as sparse_bar,
        tqdm(
            total=0, desc="encoding", unit="doc", **bar_options(quiet or encoder is None)
        ) as dense_bar,
    ):

        def on_dense(n: int) -> None:
            if dense_bar.total == 0:
                dense_bar.total = stats.documents
            dense_bar.update(n)

        docs = (
            iter(())
            if args.empty
            else read_corpus(corpus, skip_bad_lines=args.skip_bad_lines, stats=stats, schema=schema)
        )
        summary = build_index(
            docs,
            args.out,
            encoder=encoder,
            encoder_info=encoder_info,
            force=args.force,
            batch_size=args.batch_size,
            on_sparse_progress=sparse_bar.update,
            on_dense_progress=on_dense,
            dense_index=DenseIndexKind(args.dense_index),
            hnsw=HnswParams(m=args.hnsw_m, ef_construction=args.hnsw_ef_construction),
            schema=schema,
        )
    rate = summary.documents / summary.seconds if summary.seconds > 0 else 0.0
    print(
        f"indexed {summary.documents} documents into {args.out} in {summary.seconds:.1f} s "
        f"({rate:.1f} documents/s); "
        f"{summary.bytes_on_disk} bytes on disk; "
        f"vectors: {'yes' if summary.has_vectors else 'no'}; "
        f"duplicate ids replaced: {summary.duplicates}; bad lines skipped: {stats.bad_lines}"
    )
    return 0
