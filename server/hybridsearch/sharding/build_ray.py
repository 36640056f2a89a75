"""Building a sharded collection on a Ray cluster (`hybridsearch index --shards N --ray ...`).

::

    read (Ray Data: JSON lines or Parquet, in file order)  →  parse + route by shard_of
      →  encode (actor pool of ONNX encoders; num_gpus=1 per actor on a cluster with GPUs)
      →  split each block by shard (one task per block, N outputs)
      →  build the N shards in parallel (one task per shard: `build_index` with the vectors)
      →  shards.json, rename into place (`build_local.commit_sharded`)

The result is the collection `build_local.build_sharded` makes of the same corpus: the same
documents in the same order in each shard (Ray Data's ``preserve_order``), so the same BM25
index, and the same vectors up to float noise. The shard tasks run on this machine's node,
where ``out`` is, so no shared filesystem is needed; encoding, the cost of a build, runs
anywhere in the cluster. Until the rename nothing is visible at ``out``: a build that fails
removes its staging directory, one that is killed leaves only that hidden directory (removed
by the next build of ``out``), and ``--force`` never replaces a collection a writer serves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from hybridsearch.dense.select import DenseIndexKind
from hybridsearch.errors import BuildError, CorpusError, SetupError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.sharding.build_local import (
    ShardedBuildSummary,
    commit_sharded,
    start_sharded_build,
)
from hybridsearch.sharding.layout import ShardManifest
from hybridsearch.sharding.ray_encode import DocumentEncoderStage, ProgressCounter
from hybridsearch.sharding.ray_source import documents_dataset, find_source, is_uri
from hybridsearch.sharding.records import (
    concat_tables,
    split_table,
    table_documents,
    table_vectors,
)
from hybridsearch.storage.builder import (
    BuildSummary,
    build_index,
    check_source_outside,
    utc_now,
)
from hybridsearch.storage.files import dir_size_bytes
from hybridsearch.storage.manifest import EncoderInfo
from hybridsearch.types import Device

if TYPE_CHECKING:
    from hybridsearch.dense.hnsw import HnswParams

log = logging.getLogger(__name__)

ProgressFn = Callable[[int], object]
POLL_S = 0.5
# Rows per encoder call, in encoder batches: the encoder sorts a call's rows by length (little
# padding), and a call is the unit of progress and of spreading work over the pool.
ROWS_PER_CALL_IN_BATCHES = 4


@dataclass(frozen=True, slots=True)
class RayBuildOptions:
    """How the distributed build uses the cluster."""

    encoders: int | None = None  # actors in the encoder pool; None: one per GPU or per CPU
    encoder_cpus: float = 1.0  # CPUs each encoder actor holds (its onnxruntime threads)
    device: Device = Device.AUTO  # AUTO: CUDA when the cluster has GPUs
    batch_size: int = 32  # documents per encoder run
    max_length: int | None = None
    skip_bad_lines: bool = False
    dense_index: DenseIndexKind = DenseIndexKind.EXACT
    hnsw: HnswParams | None = None


@dataclass(frozen=True, slots=True)
class RayBuildSummary:
    """A distributed build's result: the collection, what was skipped, and the time."""

    collection: ShardedBuildSummary
    bad_records: int
    seconds: float
    encoders: int
    gpus_per_encoder: int
    #: How many of the encoders the cluster's CPUs (or GPUs) could run at once when the build
    #: started (Ray starts the others only when resources free up or nodes join).
    encoders_at_once: int = 0
    #: How many encoder actors encoded documents: fewer than ``encoders`` when the cluster
    #: could not place them all (or the corpus gave some no batch).
    encoders_ran: int = 0


@dataclass(frozen=True, slots=True)
class EncoderPlacement:
    """The encoder pool on a cluster: its actors, how many fit at once, GPUs each, device."""

    actors: int
    at_once: int
    gpus: int
    device: Device


def encoder_placement(ray: ModuleType, options: RayBuildOptions) -> EncoderPlacement:
    """The encoder pool on this cluster; `SetupError` when no node has the CPUs one actor
    asks for (Ray would wait for such a node forever)."""
    gpus = int(ray.cluster_resources().get("GPU", 0))
    cpus = float(ray.cluster_resources().get("CPU", 1))
    if options.device is Device.CUDA and gpus == 0:
        raise BuildError("--device cuda: the Ray cluster has no GPUs (ray status lists them)")
    largest = max((float(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")),
                  default=0.0)  # fmt: skip
    if options.encoder_cpus > largest:
        raise SetupError(
            f"--ray-encoder-cpus {options.encoder_cpus:g}: no node of the Ray cluster has that "
            f"many CPUs (largest: {largest:g})"
        )
    use_gpu = gpus > 0 and options.device is not Device.CPU
    fits = gpus if use_gpu else max(1, int(cpus // options.encoder_cpus))
    actors = options.encoders or fits
    if actors > fits:
        log.warning(
            "--ray-encoders %d: the cluster's %s run at most %d encoder actors at once; the "
            "others start only if nodes join (the summary says how many ran)",
            actors,
            f"{gpus} GPUs" if use_gpu else f"{cpus:g} CPUs",
            fits,
        )
    return EncoderPlacement(
        actors, min(actors, fits), 1 if use_gpu else 0, Device.CUDA if use_gpu else Device.CPU
    )


def build_sharded_ray(
    ray: ModuleType,
    corpus: str,
    out: Path,
    count: int,
    *,
    model_dir: Path | None,
    encoder_info: EncoderInfo | None,
    schema: CollectionSchema | None = None,
    force: bool = False,
    options: RayBuildOptions = RayBuildOptions(),
    on_encoded: ProgressFn | None = None,
    on_shard_built: ProgressFn | None = None,
) -> RayBuildSummary:
    """Build ``count`` shards of ``corpus`` at ``out`` on the connected Ray cluster.

    ``model_dir`` and ``encoder_info`` (both or neither: BM25 only) name the encoder.
    ``on_encoded`` hears documents done (parsed and encoded), ``on_shard_built`` shards done.
    """
    started = time.perf_counter()
    schema = schema or CollectionSchema()
    if (model_dir is None) != (encoder_info is None):
        raise BuildError("a model directory needs its EncoderInfo")
    source = find_source(corpus)
    if not is_uri(corpus):
        check_source_outside(Path(corpus.removeprefix("file://")), out)
    placement = (
        encoder_placement(ray, options) if model_dir else EncoderPlacement(0, 0, 0, Device.CPU)
    )
    actors, gpus, device = placement.actors, placement.gpus, placement.device
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # shard order = corpus order
    context.enable_progress_bars = False  # the caller shows documents/s and ETA
    # Reads Parquet footers (`CorpusError` for a file that is not one) before ``out``.
    dataset = documents_dataset(ray, source, count, schema, strict=not options.skip_bad_lines)
    # Refused here, before any work, when ``out`` exists (without force) or is served.
    staging = start_sharded_build(out, force)
    progress = ray.remote(num_cpus=0)(ProgressCounter).remote()
    rows_per_call = options.batch_size * ROWS_PER_CALL_IN_BATCHES
    if model_dir is None:
        dataset = dataset.map_batches(_count_rows, fn_kwargs={"progress": progress},
                                      batch_format="pyarrow", num_cpus=0)  # fmt: skip
    else:
        dataset = dataset.map_batches(
            DocumentEncoderStage,
            fn_constructor_kwargs={
                "model_dir": str(model_dir),
                "device": device.value,
                "max_length": options.max_length,
                "batch_size": options.batch_size,
                "threads": max(1, int(options.encoder_cpus)),
                "progress": progress,
            },
            batch_size=rows_per_call,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=options.encoder_cpus,
            num_gpus=gpus,
        )
    manifest = ShardManifest(count, encoder_info, schema, utc_now())
    try:
        blocks = _run_polling(ray, dataset.to_arrow_refs, progress, on_encoded)
        parts, errors = _split_blocks(ray, blocks, count)
        if errors and not options.skip_bad_lines:
            raise CorpusError(f"{len(errors)} malformed records (--skip-bad-lines skips them); "
                              f"the first: {errors[0]}")  # fmt: skip
        summaries = _build_shards(
            ray, parts, manifest.shard_paths(staging.path), encoder_info, schema, options,
            on_shard_built,
        )  # fmt: skip
        ran = int(ray.get(progress.encoders_ran.remote()))  # each registered before its output
        commit_sharded(staging, out, manifest)
    except BaseException:
        staging.remove()
        raise
    finally:
        ray.kill(progress)
    return RayBuildSummary(
        ShardedBuildSummary(summaries, dir_size_bytes(out)),
        bad_records=len(errors),
        seconds=time.perf_counter() - started,
        encoders=actors,
        gpus_per_encoder=gpus,
        encoders_at_once=placement.at_once,
        encoders_ran=ran,
    )


def _count_rows(table: pa.Table, progress: Any) -> pa.Table:
    progress.add.remote(table.num_rows)
    return table


def _run_polling(
    ray: ModuleType, run: Callable[[], list[Any]], progress: Any, on_done: ProgressFn | None
) -> list[Any]:
    """``run()`` (the dataset's execution) in a thread, reporting ``progress`` meanwhile."""
    result: list[list[Any]] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(run())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=target, name="ray-data-build", daemon=True)
    worker.start()
    reported = 0
    while True:
        worker.join(POLL_S)
        done = int(ray.get(progress.done.remote()))
        if on_done is not None and done > reported:
            on_done(done - reported)
        reported = done
        if not worker.is_alive():
            break
    if failure:
        raise _unwrapped(failure[0])
    return result[0]


def _unwrapped(exc: BaseException) -> BaseException:
    """A stage's own error (a `CorpusError` from parsing, say) rather than Ray's wrappers
    (``RayTaskError(UserCodeException)`` keeps it as a ``cause``, or only in its text)."""
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in seen:
        inner = getattr(cause, "cause", None)
        # A failed read task raises ``RayTaskError(CorpusError)``, a subclass of both whose
        # text is the task's traceback: its ``cause`` is the error itself.
        if isinstance(cause, CorpusError | BuildError) and not isinstance(inner, BaseException):
            # Ray Data appends its retry advice to a read task's error, on lines of its own.
            first, _, more = str(cause).partition("\n")
            return type(cause)(first) if more else cause
        seen.append(cause)
        cause = inner or cause.__cause__
    for error in (CorpusError, BuildError):
        marker = f"{error.__module__}.{error.__name__}: "
        if marker in str(exc):
            return error(str(exc).split(marker, 1)[1].splitlines()[0])
    return exc


def _split_one(table: pa.Table, count: int) -> tuple[Any, ...]:
    parts, errors = split_table(table, count)
    return (*parts, errors)


def _split_blocks(
    ray: ModuleType, blocks: list[Any], count: int
) -> tuple[list[list[Any]], list[str]]:
    """Each shard's parts (object refs, in corpus order) and the malformed records' errors."""
    split = ray.remote(num_cpus=0, num_returns=count + 1)(_split_one)
    per_block = [split.remote(block, count) for block in blocks]
    parts = [[refs[shard] for refs in per_block] for shard in range(count)]
    errors = [e for found in ray.get([refs[count] for refs in per_block]) for e in found]
    return parts, errors


def build_shard(
    path: str,
    encoder_info: EncoderInfo | None,
    schema: CollectionSchema,
    dense_index: DenseIndexKind,
    hnsw: HnswParams | None,
    *parts: pa.Table,
) -> BuildSummary:
    """Build one shard's index directory from its parts (a Ray task on the driver's node)."""
    table = concat_tables(parts)
    vectors = None if encoder_info is None else table_vectors(table, encoder_info.dimension)
    return build_index(
        table_documents(table),
        Path(path),
        encoder=None,
        encoder_info=encoder_info,
        vectors=vectors,
        schema=schema,
        dense_index=dense_index,
        hnsw=hnsw,
        force=True,  # a retried task replaces its own earlier attempt
    )


def _build_shards(  # noqa: PLR0917
    ray: ModuleType,
    parts: list[list[Any]],
    paths: list[Path],
    encoder_info: EncoderInfo | None,
    schema: CollectionSchema,
    options: RayBuildOptions,
    on_built: ProgressFn | None,
) -> tuple[BuildSummary, ...]:
    from ray.util.scheduling_strategies import (  # noqa: PLC0415
        NodeAffinitySchedulingStrategy,
    )

    node = ray.get_runtime_context().get_node_id()
    here = NodeAffinitySchedulingStrategy(node, soft=False)
    # A head started with --num-cpus 0 (as KubeRay heads often are) still writes the shards.
    cpus = next((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["NodeID"] == node), 0)
    task = ray.remote(build_shard).options(num_cpus=1 if cpus >= 1 else 0, scheduling_strategy=here)
    pending = {
        task.remote(str(path), encoder_info, schema, options.dense_index, options.hnsw, *refs): i
        for i, (path, refs) in enumerate(zip(paths, parts, strict=True))
    }
    summaries: dict[int, BuildSummary] = {}
    waiting = list(pending)
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        summaries[pending[ready[0]]] = ray.get(ready[0])
        if on_built is not None:
            on_built(1)
    return tuple(summaries[i] for i in range(len(paths)))
