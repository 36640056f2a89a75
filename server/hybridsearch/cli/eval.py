"""`hybridsearch eval`: score a run over a test collection, optionally sweep alpha.

In-process (``--index DIR``, or an index built once from ``--collection`` and cached under
``--index-cache``) or against a running server (``--server HOST:PORT``, BatchSearch). Every
retrieval setting is a flag; unset ones take the server defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hybridsearch.cli.channel import (
    add_channel_arguments,
    call_metadata,
    open_channel,
    report_rpc_error,
)
from hybridsearch.cli.flag_types import positive_int, server_address, timeout_seconds
from hybridsearch.config import Device
from hybridsearch.errors import HybridSearchError
from hybridsearch.eval.collection import Collection, load_beir, read_qrels, read_queries
from hybridsearch.eval.index_cache import DEFAULT_CACHE
from hybridsearch.eval.retrievers import (
    FUSIONS,
    MODES,
    NORMALIZATIONS,
    PRF_STAGES,
    VECTOR_PRF,
    RunSpec,
)
from hybridsearch.eval.runner import EvalReport, Retriever, format_table, run_evaluation
from hybridsearch.eval.sweep import SweepRow, parse_sweep, plot_alpha_sweep, write_sweep_csv
from hybridsearch.eval.trec import write_trec_run

if TYPE_CHECKING:
    from hybridsearch.engine.searcher import HybridSearcher

#: Builds the retriever of one spec (the engine or the server stays open across specs).
RetrieverFactory = Callable[[RunSpec], Retriever]
SWEEP_METRIC = "nDCG@10"
SWEEP_NORMALIZATIONS = ("min_max", "z_score")


def add_eval_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``eval`` on the CLI's subcommands."""
    p = commands.add_parser("eval", help="score retrieval on a test collection")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--index", type=Path, help="index directory, searched in-process")
    target.add_argument(
        "--server", type=server_address, help="HOST:PORT of a running server (BatchSearch)"
    )
    add_channel_arguments(p, server=False)  # with --server: TLS and token flags, as `search`
    p.add_argument("--collection", type=Path, help="BEIR folder (corpus.jsonl, queries, qrels)")
    p.add_argument(
        "--server-collection",
        default="",
        help="with --server: the server's collection or alias to search (default: its default "
        "collection); --collection is the BEIR folder of the test collection",
    )
    p.add_argument("--queries", type=Path, help="queries.jsonl (overrides the collection's)")
    p.add_argument("--qrels", type=Path, help="qrels, BEIR TSV or TREC (overrides the split)")
    p.add_argument("--split", default="test", help="qrels split of the collection")
    p.add_argument("--model", type=Path, help="model directory (default: the embedded MiniLM)")
    p.add_argument("--device", type=Device, default=Device.AUTO, help="auto, cpu or cuda")
    p.add_argument(
        "--encoder-int8",
        action="store_true",
        help="encode queries with the model's int8 variant (`hybridsearch models quantize`)",
    )
    p.add_argument(
        "--index-cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"where indexes built from --collection are kept (default {DEFAULT_CACHE})",
    )
    p.add_argument(
        "--top-k", type=positive_int, default=1000, help="documents per query in the run"
    )
    p.add_argument("--name", help="run name in the table (default: from the settings)")
    p.add_argument("--run", type=Path, help="write the run as a TREC run file")
    p.add_argument("--timeout", type=timeout_seconds, default=300.0, help="seconds per BatchSearch")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_retrieval_flags(p)
    sweep = p.add_argument_group("alpha sweep")
    sweep.add_argument(
        "--sweep-alpha", metavar="START:STOP:STEP", help="also sweep alpha, e.g. 0.0:1.0:0.1"
    )
    sweep.add_argument("--out-dir", type=Path, default=Path("var/eval"), help="plot + CSV go here")
    p.set_defaults(func=_cmd_eval)


def _add_retrieval_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("retrieval settings (unset: server default)")
    g.add_argument("--mode", choices=list(MODES), default="hybrid")
    g.add_argument("--fusion", choices=list(FUSIONS))
    g.add_argument("--alpha", type=float, help="weight of the dense side")
    g.add_argument("--normalization", choices=list(NORMALIZATIONS))
    g.add_argument("--rrf-k", type=int)
    g.add_argument("--sparse-depth", type=int, help="BM25 candidates entering fusion")
    g.add_argument("--dense-depth", type=int, help="dense candidates entering fusion")
    prf = p.add_argument_group("pseudo-relevance feedback (off by default)")
    prf.add_argument("--rm3", action="store_true", help="RM3 expansion of the BM25 arm")
    prf.add_argument("--fb-docs", type=int, help="RM3 feedback documents (10)")
    prf.add_argument("--fb-terms", type=int, help="RM3 expansion terms (10)")
    prf.add_argument("--original-query-weight", type=float, help="RM3 (0.5)")
    prf.add_argument("--vector-prf", choices=list(VECTOR_PRF), help="dense-arm vector PRF")
    prf.add_argument("--vector-depth", type=int, help="vector PRF feedback docs (3 / 5)")
    prf.add_argument("--rocchio-alpha", type=float, help="Rocchio query weight (0.4)")
    prf.add_argument("--rocchio-beta", type=float, help="Rocchio feedback weight (0.6)")
    prf.add_argument("--prf-stage", choices=list(PRF_STAGES), help="hybrid PRF stage (after)")


def load_collection(args: argparse.Namespace) -> Collection:
    """The judged queries: a BEIR folder, optionally with other queries/qrels, or both files."""
    if args.collection is not None:
        return load_beir(args.collection, queries=args.queries, qrels=args.qrels, split=args.split)
    if args.queries is None or args.qrels is None:
        raise HybridSearchError("give --collection DIR, or both --queries and --qrels")
    if args.index is None and args.server is None:
        raise HybridSearchError("--queries/--qrels without --collection need --index or --server")
    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    missing = [qid for qid in qrels if qid not in queries]
    if missing or not qrels:
        raise HybridSearchError(f"{args.qrels}: judged queries without text: {missing[:5]}")
    return Collection(corpus_path=args.queries, queries=queries, qrels=qrels)


@contextlib.contextmanager
def open_retrievers(args: argparse.Namespace, collection: Collection) -> Iterator[RetrieverFactory]:
    """A factory of retrievers over the target the flags name (engine or server)."""
    if args.server_collection and args.server is None:
        raise HybridSearchError("--server-collection names a collection of --server; add it")
    connection = ("tls", "tls_ca", "tls_cert", "tls_key", "tls_server_name", "token", "token_file")
    if args.server is None and any(getattr(args, name) for name in connection):
        raise HybridSearchError("the --tls* and --token* flags are for --server; add it")
    if args.server is not None:
        if args.encoder_int8:
            raise HybridSearchError(
                "--encoder-int8 applies to in-process runs; start the server with it instead"
            )
        from hybridsearch.cli.eval_client import GrpcRetriever  # noqa: PLC0415
        from hybridsearch.v1 import search_pb2_grpc  # noqa: PLC0415

        metadata = call_metadata(args)
        with open_channel(args) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            yield lambda spec: GrpcRetriever(
                stub,
                spec,
                timeout_s=args.timeout,
                collection=args.server_collection,
                metadata=metadata,
            )
        return
    from hybridsearch.eval.retrievers import EngineRetriever  # noqa: PLC0415

    engine = open_engine(
        args.index,
        collection,
        args.model,
        device=args.device,
        cache=args.index_cache,
        progress=not args.no_progress,
        int8_queries=args.encoder_int8,
    )
    try:
        yield lambda spec: EngineRetriever(engine, spec)
    finally:
        engine.close()


def open_engine(
    index: Path | None,
    collection: Collection,
    model: Path | None,
    *,
    device: Device = Device.AUTO,
    cache: Path = DEFAULT_CACHE,
    progress: bool = True,
    int8_queries: bool = False,
) -> HybridSearcher:
    """An in-process engine over ``index``, or over the cached index of the collection.

    ``int8_queries``: queries encoded by the model's int8 variant (documents never are).
    """
    from hybridsearch.engine.loader import (  # noqa: PLC0415
        default_model_dir,
        encoder_info_of,
        load_query_encoder,
    )
    from hybridsearch.engine.searcher import HybridSearcher  # noqa: PLC0415
    from hybridsearch.eval.index_cache import cached_index  # noqa: PLC0415
    from hybridsearch.eval.retrievers import CachedQueryEncoder  # noqa: PLC0415
    from hybridsearch.storage.index_dir import open_index  # noqa: PLC0415

    model_dir = model or default_model_dir()
    if index is None:
        encoder = load_query_encoder(model_dir, device)
        index = cached_index(
            collection.corpus_path, encoder, encoder_info_of(encoder), cache, progress=progress
        )
    opened = open_index(index)
    info = opened.manifest.encoder
    if info is None:
        return HybridSearcher(opened, None)
    encoder = load_query_encoder(
        model_dir, device, max_length=info.max_length, int8_queries=int8_queries
    )
    return HybridSearcher(opened, CachedQueryEncoder(encoder))


@dataclass(frozen=True, slots=True)
class SweepResult:
    """An alpha sweep: interpolation rows per normalisation, and the reference runs."""

    rows: list[SweepRow]
    single_arm: dict[str, float]
    rrf: float

    def best(self, series: str, metric: str = SWEEP_METRIC) -> SweepRow:
        """The row of ``series`` with the highest ``metric`` (the lowest alpha on ties)."""
        rows = [r for r in self.rows if r.series == series]
        return max(rows, key=lambda r: (r.metrics[metric], -r.alpha))


def sweep_alpha(
    make: RetrieverFactory,
    base: RunSpec,
    collection: Collection,
    alphas: Sequence[float],
    *,
    top_k: int = 1000,
    normalizations: Sequence[str] = SWEEP_NORMALIZATIONS,
    progress: bool = True,
) -> SweepResult:
    """Interpolation at each alpha for each normalisation, plus BM25, dense and RRF runs
    (with ``base``'s other settings, PRF included)."""

    def score(spec: RunSpec) -> dict[str, float]:
        report = run_evaluation(make(spec), collection, top_k, progress, name=spec.label())
        return report.metrics

    hybrid = base.replace(mode="hybrid", fusion="interpolation")
    rows = [
        SweepRow(norm, alpha, score(hybrid.replace(alpha=alpha, normalization=norm)))
        for norm in normalizations
        for alpha in alphas
    ]
    single_arm = {
        "BM25": score(base.replace(mode="sparse"))[SWEEP_METRIC],
        "dense": score(base.replace(mode="dense"))[SWEEP_METRIC],
    }
    rrf = score(base.replace(mode="hybrid", fusion="rrf"))[SWEEP_METRIC]
    return SweepResult(rows, single_arm, rrf)


def write_sweep(result: SweepResult, out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write ``<name>-alpha-sweep.csv`` and ``.png`` into ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{name}-alpha-sweep.csv"
    png_path = out_dir / f"{name}-alpha-sweep.png"
    reference = [
        SweepRow(label, float("nan"), {SWEEP_METRIC: value})
        for label, value in [*result.single_arm.items(), ("RRF", result.rrf)]
    ]
    write_sweep_csv([*result.rows, *reference], csv_path)
    plot_alpha_sweep(
        result.rows,
        result.single_arm,
        result.rrf,
        png_path,
        f"{name}: {SWEEP_METRIC} against alpha",
        metric=SWEEP_METRIC,
    )
    return csv_path, png_path


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.server is None:
        return _run_eval(args)
    import grpc  # noqa: PLC0415 (kept off the import path of in-process runs)

    try:
        return _run_eval(args)
    except grpc.RpcError as error:
        report_rpc_error(error, args)
        return 1


def check_run_path(path: Path) -> None:
    """Refuse a ``--run`` file that could not be written, before the evaluation runs: a
    directory, or a path whose nearest existing ancestor is not a writable directory."""
    if path.is_dir():
        raise HybridSearchError(f"--run {path}: is a directory; give the run file's name")
    _check_creatable("--run", path)


def check_out_dir(path: Path) -> None:
    """Refuse an ``--out-dir`` the sweep's files could not be written into, before the
    evaluation runs (its writes came after the whole sweep): a file, or a path whose nearest
    existing ancestor is not a writable directory."""
    if path.exists() and not path.is_dir():
        raise HybridSearchError(f"--out-dir {path}: is not a directory")
    _check_creatable("--out-dir", path)


def _check_creatable(flag: str, path: Path) -> None:
    existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    if existing != path.absolute() and not existing.is_dir():
        raise HybridSearchError(f"{flag} {path}: cannot be created: {existing} is not a directory")
    writable = existing if existing.is_dir() else existing.parent
    if not os.access(writable, os.W_OK | os.X_OK) or (
        path.exists() and not os.access(path, os.W_OK)
    ):
        raise HybridSearchError(f"{flag} {path}: cannot be written: permission denied")


def _write_run(path: Path, report: EvalReport) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_trec_run(path, report.run)
    except OSError as exc:
        raise HybridSearchError(f"--run {path}: cannot be written: {exc.strerror or exc}") from None


def _run_eval(args: argparse.Namespace) -> int:
    if args.run is not None:
        check_run_path(args.run)
    if args.sweep_alpha:
        check_out_dir(args.out_dir)
    collection = load_collection(args)
    spec = RunSpec.from_namespace(args)
    progress = not args.no_progress
    reports: list[EvalReport] = []
    with open_retrievers(args, collection) as make:
        name = args.name or spec.label()
        reports.append(run_evaluation(make(spec), collection, args.top_k, progress, name=name))
        sweep = None
        if args.sweep_alpha:
            try:
                alphas = parse_sweep(args.sweep_alpha)
            except ValueError as exc:
                raise HybridSearchError(f"--sweep-alpha: {exc}") from exc
            sweep = sweep_alpha(make, spec, collection, alphas, top_k=args.top_k, progress=progress)
    print(format_table(reports))
    if sweep is not None:
        title = collection.corpus_path.parent.name if args.collection else "run"
        try:
            csv_path, png_path = write_sweep(sweep, args.out_dir, title)
        except OSError as exc:
            why = exc.strerror or exc
            raise HybridSearchError(f"--out-dir {args.out_dir}: cannot be written: {why}") from None
        print(f"\nalpha sweep ({SWEEP_METRIC}): {csv_path}, {png_path}")
        for series in dict.fromkeys(r.series for r in sweep.rows):
            best = sweep.best(series)
            print(f"  best {series}: alpha {best.alpha:g} -> {best.metrics[SWEEP_METRIC]:.3f}")
        refs = {**sweep.single_arm, "RRF": sweep.rrf}
        print("  " + ", ".join(f"{k} {v:.3f}" for k, v in refs.items()))
    sys.stdout.flush()
    if args.run is not None:  # last: a write that fails anyway loses none of the results
        _write_run(args.run, reports[0])
    return 0
