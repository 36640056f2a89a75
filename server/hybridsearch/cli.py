"""The `hybridsearch` command: index, ingest, serve, search, models."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

# One BLAS thread unless told otherwise, set before numpy loads (the imports below load it): a
# search's product is a few query rows against the matrix, memory-bound, and a multi-threaded
# OpenBLAS spins and fights onnxruntime's pool for the cores: on a busy 2-core box a top-1000
# product took 17 ms p50 with the default threads against 0.12 ms with one, and a server whose
# BLAS had two threads spent 24 instead of 15 CPU ms per hybrid query (bench/results).
for _blas_threads in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas_threads, "1")

from hybridsearch.client_channel import add_channel_arguments  # noqa: E402
from hybridsearch.config import (  # noqa: E402
    Device,
    ServerSettings,
    add_settings_arguments,
    settings_from,
)
from hybridsearch.errors import HybridSearchError  # noqa: E402

SAMPLE_CORPUS = "cranfield-corpus.jsonl.gz"


def sample_corpus_path() -> Path:
    """The bundled sample corpus (Cranfield, gzip)."""
    return Path(str(resources.files("hybridsearch") / "data" / SAMPLE_CORPUS))


def _add_index_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("index", help="build an index from a corpus")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--corpus", type=Path, help="BEIR corpus.jsonl or Pyserini JsonCollection (.gz ok)"
    )
    source.add_argument(
        "--sample", action="store_true", help="the bundled sample corpus (Cranfield)"
    )
    source.add_argument(
        "--empty",
        action="store_true",
        help="no documents: an empty index to fill through `hybridsearch ingest`",
    )
    p.add_argument("--out", type=Path, required=True, help="index directory to create")
    p.add_argument(
        "--model", type=Path, help="model directory of the dense encoder (default: MiniLM)"
    )
    p.add_argument("--no-dense", action="store_true", help="BM25 only: no vectors")
    p.add_argument("--force", action="store_true", help="replace an existing index at --out")
    p.add_argument("--skip-bad-lines", action="store_true", help="skip and count malformed lines")
    p.add_argument("--batch-size", type=int, default=32, help="documents per encoder run")
    p.add_argument("--max-length", type=int, help="token limit per document (default: model's)")
    p.add_argument("--device", type=Device, default=Device.AUTO, help="auto, cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--dense-index",
        choices=["exact", "hnsw"],
        default="exact",
        help="exact inner product (default) or an HNSW graph (approximate; needs faiss)",
    )
    p.add_argument("--hnsw-m", type=int, default=32, help="HNSW graph degree")
    p.add_argument(
        "--hnsw-ef-construction", type=int, default=200, help="HNSW build candidate list"
    )
    p.set_defaults(func=_cmd_index)


def _cmd_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # noqa: PLC0415

    from hybridsearch.dense.hnsw import HnswParams  # noqa: PLC0415 (faiss itself loads lazily)
    from hybridsearch.dense.select import DenseIndexKind  # noqa: PLC0415
    from hybridsearch.storage.builder import build_index  # noqa: PLC0415
    from hybridsearch.storage.corpus import ReadStats, count_lines, read_corpus  # noqa: PLC0415

    corpus = sample_corpus_path() if args.sample else args.corpus
    encoder, encoder_info = None, None
    if not args.no_dense:
        from hybridsearch.loader import (  # noqa: PLC0415
            default_model_dir,
            encoder_info_of,
            load_query_encoder,
        )

        model = args.model or default_model_dir()
        encoder = load_query_encoder(
            model, args.device, max_length=args.max_length, batch_size=args.batch_size
        )
        encoder_info = encoder_info_of(encoder)
    total = 0 if args.empty else count_lines(corpus)
    stats = ReadStats()
    quiet = args.no_progress
    with (
        tqdm(total=total, desc="reading + BM25", unit="doc", disable=quiet) as sparse_bar,
        tqdm(total=0, desc="encoding", unit="doc", disable=quiet or encoder is None) as dense_bar,
    ):

        def on_dense(n: int) -> None:
            if dense_bar.total == 0:
                sparse_bar.close()  # reading and BM25 are done; stop its clock
                dense_bar.total = stats.documents
            dense_bar.update(n)

        docs = (
            iter(())
            if args.empty
            else read_corpus(corpus, skip_bad_lines=args.skip_bad_lines, stats=stats)
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
        )
    print(
        f"indexed {summary.documents} documents into {args.out} in {summary.seconds:.1f} s; "
        f"{summary.bytes_on_disk} bytes on disk; "
        f"vectors: {'yes' if summary.has_vectors else 'no'}; "
        f"duplicate ids replaced: {summary.duplicates}; bad lines skipped: {stats.bad_lines}"
    )
    return 0


def _add_ingest_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("ingest", help="stream a corpus into a running server")
    p.add_argument("--server", default="127.0.0.1:50051", help="HOST:PORT of the server")
    p.add_argument(
        "--corpus", type=Path, required=True, help="BEIR corpus.jsonl or Pyserini JsonCollection"
    )
    p.add_argument(
        "--batch-size", type=int, default=64, help="documents per message (one commit each)"
    )
    p.add_argument("--skip-bad-lines", action="store_true", help="skip and count malformed lines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--timeout", type=float, help="deadline of the whole upload, in seconds")
    p.set_defaults(func=_cmd_ingest)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from hybridsearch.ingest_client import run_ingest  # noqa: PLC0415

    return run_ingest(args)


def _add_serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("serve", help="serve an index over gRPC")
    add_settings_arguments(p)
    p.add_argument("--log-level", default="INFO", help="logging level (access logs: INFO)")
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    from hybridsearch.logs import configure_logging  # noqa: PLC0415 (imports no grpc)

    try:
        settings = settings_from(args)
    except ValueError as exc:
        raise HybridSearchError(str(exc)) from exc
    configure_logging(args.log_level, settings.log_format)
    if settings.workers < 1:
        raise HybridSearchError(f"--workers must be >= 1, got {settings.workers}")
    if settings.workers > 1 and settings.metrics_port:
        raise HybridSearchError(
            "--metrics-port with --workers > 1 is not supported yet (each worker would bind it)"
        )
    if settings.workers > 1:
        from hybridsearch.workers import serve_workers  # noqa: PLC0415

        return serve_workers(settings, _serve_process)  # forks before grpc is imported
    return _serve_process(settings, None)


def _serve_process(settings: ServerSettings, announce: Callable[[str], None] | None) -> int:
    from hybridsearch.api.server import serve  # noqa: PLC0415
    from hybridsearch.loader import load_index  # noqa: PLC0415

    if announce is None:
        return asyncio.run(serve(settings, load_index))
    return asyncio.run(serve(settings, load_index, announce))


def _add_search_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("search", help="query a running server")
    p.add_argument("query", help="query text")
    add_channel_arguments(p)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--mode", choices=["hybrid", "dense", "sparse"], default="hybrid")
    p.add_argument("--fusion", choices=["interpolation", "rrf"], help="fusion method")
    p.add_argument("--alpha", type=float, help="weight of the dense side")
    p.add_argument("--explain", action="store_true", help="show each arm's scores and ranks")
    p.add_argument("--json", action="store_true", help="print the response as JSON")
    p.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    p.set_defaults(func=_cmd_search)


def _cmd_search(args: argparse.Namespace) -> int:
    from hybridsearch.search_client import run_search  # noqa: PLC0415

    return run_search(args)


def _add_health_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("health", help="check a server's health (exit 0 when SERVING)")
    add_channel_arguments(p)
    p.add_argument("--service", default="", help="service name to check ('' = the server)")
    p.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds")
    p.set_defaults(func=_cmd_health)


def _cmd_health(args: argparse.Namespace) -> int:
    from hybridsearch.health_client import run_health  # noqa: PLC0415

    return run_health(args)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="hybridsearch", description="gRPC hybrid dense-sparse search server"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_index_parser(commands)
    _add_ingest_parser(commands)
    _add_serve_parser(commands)
    _add_search_parser(commands)
    _add_health_parser(commands)
    from hybridsearch.encoders.commands import add_models_commands  # noqa: PLC0415

    add_models_commands(commands)
    from hybridsearch.eval.command import add_eval_command  # noqa: PLC0415

    add_eval_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except HybridSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
