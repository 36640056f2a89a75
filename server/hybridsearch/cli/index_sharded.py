"""`hybridsearch index --shards N [--ray auto|ADDRESS]`: build a sharded collection, in this
process or on a Ray cluster (`sharding.build_local`, `sharding.build_ray`).

Ray is imported only with ``--ray`` (the optional extra ``ray``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridsearch.errors import SetupError
from hybridsearch.progress import bar_options
from hybridsearch.sharding.layout import MAX_SHARDS

if TYPE_CHECKING:
    from hybridsearch.sharding.build_ray import RayBuildSummary


DEFAULT_RAY_ENCODER_CPUS = 1.0


def add_sharding_arguments(p: argparse.ArgumentParser) -> None:
    """The sharding and Ray flags of `hybridsearch index`."""
    p.add_argument(
        "--shards",
        type=int,
        help=f"build a sharded collection of N shards (1..{MAX_SHARDS}; shard = "
        "sha256(id)[:8] mod N, see the README); --out gets shards.json and shard-NNNNN/",
    )
    p.add_argument(
        "--ray",
        metavar="auto|local|ADDRESS",
        help="build on a Ray cluster (needs the extra: pip install -e '.[ray]'): 'auto' joins "
        "the one on this machine or starts a local one, 'local' always starts one, ADDRESS "
        "is a head's host:port",
    )
    p.add_argument(
        "--ray-encoders",
        type=int,
        help="encoder actors (default: one per GPU of the cluster, else one per "
        "--ray-encoder-cpus CPUs)",
    )
    p.add_argument(
        "--ray-encoder-cpus",
        type=float,
        default=DEFAULT_RAY_ENCODER_CPUS,
        help="CPUs each encoder actor holds (and its onnxruntime threads)",
    )


def check_sharding_arguments(args: argparse.Namespace) -> int:
    """The shard count of a sharded build; `SetupError` names the flag that is wrong."""
    count = 1 if args.shards is None else args.shards
    if not 1 <= count <= MAX_SHARDS:
        raise SetupError(f"--shards must be in [1, {MAX_SHARDS}] (got {count})")
    if args.ray is None and args.ray_encoders is not None:
        raise SetupError("--ray-encoders needs --ray")
    if args.ray is not None:
        if args.empty:
            raise SetupError("--ray builds from a corpus; drop it to create empty shards")
        if args.ray_encoders is not None and args.ray_encoders < 1:
            raise SetupError(f"--ray-encoders must be at least 1 (got {args.ray_encoders})")
        if args.ray_encoder_cpus <= 0:
            raise SetupError(f"--ray-encoder-cpus must be positive (got {args.ray_encoder_cpus})")
    return count


def run_index_sharded(args: argparse.Namespace) -> int:
    """Build the sharded collection the flags describe and print what was built."""
    count = check_sharding_arguments(args)
    if args.ray is not None:
        return _run_ray(args, count)
    return _run_local(args, count)


def _encoder(args: argparse.Namespace) -> tuple[Path | None, Any]:
    """(model directory, EncoderInfo), or (None, None) with --no-dense."""
    if args.no_dense:
        return None, None
    from hybridsearch.encoders.config import load_config  # noqa: PLC0415
    from hybridsearch.engine.loader import (  # noqa: PLC0415
        default_model_dir,
        encoder_info_of_config,
    )

    model = (args.model or default_model_dir()).resolve()
    config = load_config(model)
    if args.max_length is not None:
        import dataclasses  # noqa: PLC0415

        config = dataclasses.replace(config, max_length=args.max_length)
    return model, encoder_info_of_config(config)


def _hnsw(args: argparse.Namespace) -> Any:
    from hybridsearch.dense.hnsw import HnswParams  # noqa: PLC0415 (faiss itself loads lazily)

    return HnswParams(m=args.hnsw_m, ef_construction=args.hnsw_ef_construction)


def _run_local(args: argparse.Namespace, count: int) -> int:
    from tqdm import tqdm  # noqa: PLC0415

    from hybridsearch.cli.index import sample_corpus_path  # noqa: PLC0415
    from hybridsearch.dense.select import DenseIndexKind  # noqa: PLC0415
    from hybridsearch.engine.loader import load_query_encoder  # noqa: PLC0415
    from hybridsearch.metadata.schema import CollectionSchema, load_schema_file  # noqa: PLC0415
    from hybridsearch.sharding.build_local import build_sharded  # noqa: PLC0415
    from hybridsearch.storage.builder import check_source_outside  # noqa: PLC0415
    from hybridsearch.storage.corpus import ReadStats, count_lines, read_corpus  # noqa: PLC0415

    corpus = sample_corpus_path() if args.sample else Path(args.corpus or ".")
    if args.corpus:
        check_source_outside(corpus, args.out)  # before the model loads
    schema = load_schema_file(args.schema) if args.schema else CollectionSchema()
    model, info = _encoder(args)
    encoder = None
    if model is not None:
        encoder = load_query_encoder(
            model, args.device, max_length=args.max_length, batch_size=args.batch_size
        )
    stats = ReadStats()
    docs = (
        iter(())
        if args.empty
        else read_corpus(corpus, skip_bad_lines=args.skip_bad_lines, stats=stats, schema=schema)
    )
    total = 0 if args.empty else count_lines(corpus)
    step = "encoding" if encoder is not None else "BM25"
    started = time.perf_counter()
    with tqdm(total=total, desc=f"{count} shards: {step}", unit="doc",
              **bar_options(args.no_progress)) as bar:  # fmt: skip
        summary = build_sharded(
            docs,
            args.out,
            count,
            encoder=encoder,
            encoder_info=info,
            schema=schema,
            force=args.force,
            batch_size=args.batch_size,
            on_dense_progress=bar.update if encoder is not None else None,
            on_sparse_progress=None if encoder is not None else bar.update,
            dense_index=DenseIndexKind(args.dense_index),
            hnsw=_hnsw(args),
        )
    seconds = time.perf_counter() - started
    _report(args.out, count, summary.documents, seconds, summary.bytes_on_disk,
            summary.duplicates, stats.bad_lines, model is not None)  # fmt: skip
    return 0


def _run_ray(args: argparse.Namespace, count: int) -> int:
    from hybridsearch.sharding.ray_runtime import RayRuntime, import_ray  # noqa: PLC0415

    import_ray()  # first: without the extra, pyarrow is missing too; name the extra
    from tqdm import tqdm  # noqa: PLC0415

    from hybridsearch.cli.index import sample_corpus_path  # noqa: PLC0415
    from hybridsearch.dense.select import DenseIndexKind  # noqa: PLC0415
    from hybridsearch.metadata.schema import CollectionSchema, load_schema_file  # noqa: PLC0415
    from hybridsearch.sharding.build_ray import RayBuildOptions, build_sharded_ray  # noqa: PLC0415
    from hybridsearch.sharding.ray_source import find_source  # noqa: PLC0415

    corpus = str(sample_corpus_path()) if args.sample else args.corpus
    schema = load_schema_file(args.schema) if args.schema else CollectionSchema()
    model, info = _encoder(args)
    total = find_source(corpus).count_hint()
    options = RayBuildOptions(
        encoders=args.ray_encoders,
        encoder_cpus=args.ray_encoder_cpus,
        device=args.device,
        batch_size=args.batch_size,
        max_length=args.max_length,
        skip_bad_lines=args.skip_bad_lines,
        dense_index=DenseIndexKind(args.dense_index),
        hnsw=_hnsw(args),
    )
    # SIGTERM (a pod stopped, `kill`) ends the build as Ctrl-C does: staging removed, the
    # private Ray stopped, exit 130 (Ray's own handler aborted the process mid-build).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    runtime = RayRuntime(args.ray)  # joins a running Ray (a test's) without owning it
    ray = runtime.ray
    importlib.import_module("ray.data")  # it configures its loggers on import; then quiet
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its INFO lines drown the bar
    for name in QUIET_RAY_LOGGERS:  # they log a failed stage's error the build reports
        logging.getLogger(name).setLevel(logging.CRITICAL)
    signal.signal(signal.SIGTERM, _interrupt)  # ray.init installs its own
    try:
        step = "encoding" if model is not None else "reading"
        with tqdm(
            total=total, desc=f"ray: {step}", unit="doc", **bar_options(args.no_progress)
        ) as bar:
            summary = build_sharded_ray(
                ray, corpus, args.out, count, model_dir=model, encoder_info=info,
                schema=schema, force=args.force, options=options, on_encoded=bar.update,
            )  # fmt: skip
    finally:
        runtime.close()
        signal.signal(signal.SIGTERM, previous)
    built = summary.collection
    _report(args.out, count, built.documents, summary.seconds, built.bytes_on_disk,
            built.duplicates, summary.bad_records, model is not None)  # fmt: skip
    print(encoder_line(summary))
    return 0


def encoder_line(summary: RayBuildSummary) -> str:
    """The summary's line about the encoder pool: how many actors encoded documents, and, when
    fewer than requested did, how many were requested and why the others did not run."""
    if not summary.encoders:
        return "ray: no encoder (BM25 only)"
    gpus = f"{summary.gpus_per_encoder} GPU each"
    if summary.encoders_ran >= summary.encoders:
        return f"ray: {_actors(summary.encoders)}, {gpus}"
    line = f"ray: {_actors(summary.encoders_ran)} ran ({summary.encoders} requested), {gpus}"
    if summary.encoders_at_once < summary.encoders:
        resource = "GPUs" if summary.gpus_per_encoder else "CPUs"
        return line + (
            f"; the cluster's {resource} fit {summary.encoders_at_once} at once "
            "(lower --ray-encoders, or add nodes)"
        )
    return line + "; the corpus gave the others no batch"


def _actors(count: int) -> str:
    return f"{count} encoder actor{'' if count == 1 else 's'}"


#: Ray Data loggers that log a failed stage's exception (with its stack) before the build
#: raises it; the build prints it as one line naming the file and line.
QUIET_RAY_LOGGERS = (
    "ray.data._internal.execution.streaming_executor_state",
    "ray.data.exceptions",
)


def _interrupt(signum: int, frame: object) -> None:
    del frame
    raise KeyboardInterrupt(f"signal {signum}")


def _report(  # noqa: PLR0917
    out: Path,
    count: int,
    documents: int,
    seconds: float,
    size: int,
    duplicates: int,
    bad: int,
    vectors: bool,
) -> None:
    rate = documents / seconds if seconds > 0 else 0.0
    shards = "1 shard" if count == 1 else f"{count} shards"
    print(
        f"indexed {documents} documents into {out} ({shards}) in {seconds:.1f} s "
        f"({rate:.1f} documents/s); {size} bytes on disk; vectors: {'yes' if vectors else 'no'}; "
        f"duplicate ids replaced: {duplicates}; bad lines skipped: {bad}"
    )
