"""Serving a sharded collection: `serve --index SHARDED_DIR`, or one of a data directory's.

Without ``--ray`` every shard is opened in this process (`LocalShardGroup`); with it each
shard runs as ``--replicas`` Ray actors (`ray_group.RayShardGroup`, imported only then: the
default install needs no Ray). The query encoder is loaded here, once, for the front
(`load_sharded`), or taken from the data directory's encoders shared by model
(`open_shared`), like a plain collection's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridsearch.config import ServerSettings
from hybridsearch.encoders.base import Encoder
from hybridsearch.engine.loader import (
    LoadedIndex,
    batching_settings,
    compaction_policy,
    resolve_model_dir,
    serving_encoder,
)
from hybridsearch.errors import SettingsError
from hybridsearch.sharding.group import LocalShardGroup, ShardGroup
from hybridsearch.sharding.layout import ShardManifest, is_sharded, load_shard_manifest
from hybridsearch.sharding.searcher import ShardedSearcher, ShardedWriter

if TYPE_CHECKING:
    from hybridsearch.engine.dense_arm import DenseArm
    from hybridsearch.engine.shared_encoders import SharedEncoders
    from hybridsearch.sharding.ray_runtime import RayRuntime

log = logging.getLogger(__name__)


def load_sharded(settings: ServerSettings) -> LoadedIndex:
    """The sharded collection at ``settings.index``, served (see the module docstring)."""
    root = settings.index
    if not is_sharded(root):  # `serve` refused it already (settings_rules); a library caller
        what = "does not exist" if not root.exists() else "is not a sharded collection"
        raise SettingsError(f"--ray / HYBRIDSEARCH_RAY: --index {root} {what}")
    manifest = load_shard_manifest(root)
    # The encoder first: a wrong --model fails before any Ray actor starts.
    encoder: Encoder | None = None
    model = _model_dir(settings, manifest)
    if model is not None and manifest.encoder is not None:
        encoder = serving_encoder(settings, model, manifest.encoder.max_length)
    runtime: RayRuntime | None = None
    if settings.ray:
        from hybridsearch.sharding.ray_runtime import RayRuntime  # noqa: PLC0415

        # `serve --ray` started Ray already (cli.serve: main thread, before gRPC); a library
        # caller that did not gets a Ray of this group's own, stopped when it closes.
        runtime = RayRuntime(settings.ray)
    try:
        owned = runtime if runtime is not None and runtime.connected else None
        group = _shard_group(root, manifest, settings, owned)
    except BaseException:
        if runtime is not None:
            runtime.close()
        raise
    return _served(root, manifest, settings, group, encoder, dense_arm=None)


def open_shared(root: Path, settings: ServerSettings, encoders: SharedEncoders) -> LoadedIndex:
    """The sharded collection at ``root`` (a data directory's), its encoder and dense arm
    taken from ``encoders`` (shared by model with the other collections).

    With ``settings.ray`` Ray must be connected already (the data directory's factory holds
    the one `RayRuntime` every collection's shard group uses).
    """
    manifest = load_shard_manifest(root)
    encoder: Encoder | None = None
    arm: DenseArm | None = None
    model = _model_dir(settings, manifest)
    if model is not None and manifest.encoder is not None:
        encoder, arm = encoders.get(model, manifest.encoder.max_length)
    group = _shard_group(root, manifest, settings, None)
    return _served(root, manifest, settings, group, encoder, dense_arm=arm)


def _model_dir(settings: ServerSettings, manifest: ShardManifest) -> Path | None:
    model = resolve_model_dir(settings.model, manifest.encoder)
    if model is None and manifest.encoder is not None:
        log.warning(
            "sharded collection built with encoder %s; no model given: only SPARSE is served",
            manifest.encoder.model_id,
        )
    return model


def _shard_group(
    root: Path, manifest: ShardManifest, settings: ServerSettings, runtime: RayRuntime | None
) -> ShardGroup:
    """Every shard in this process, or (``settings.ray``) as Ray actors; ``runtime`` is
    closed with the group (a Ray started for it alone)."""
    worker_options: dict[str, Any] = {
        "writable": not settings.read_only,
        "follow_interval_s": settings.follow_interval_s,
        "compaction": compaction_policy(settings),
        "ef_search": settings.hnsw_ef_search,
        "exact_filter_fraction": settings.hnsw_exact_filter_fraction,
    }
    if not settings.ray:
        return LocalShardGroup(root, manifest, **worker_options)
    from hybridsearch.sharding.ray_group import RayShardGroup  # noqa: PLC0415

    return RayShardGroup(
        root,
        manifest,
        replicas=settings.replicas,
        replica_cpus=settings.ray_replica_cpus,
        transport=settings.ray_transport,
        runtime=runtime,
        cluster_fixed=settings.ray == "local",  # a private Ray: no node will join it
        **worker_options,
    )


def _served(
    root: Path,
    manifest: ShardManifest,
    settings: ServerSettings,
    group: ShardGroup,
    encoder: Encoder | None,
    *,
    dense_arm: DenseArm | None,
) -> LoadedIndex:
    try:
        searcher = ShardedSearcher(
            group,
            manifest,
            encoder,
            batching=batching_settings(settings),
            arm_threads=settings.search_threads,
            bm25_statistics=settings.bm25_statistics,
            dense_arm=dense_arm,
        )
    except BaseException:
        group.close()
        raise
    log.info(
        "sharded collection %s: %d shards%s, encoder: %s, BM25 statistics: %s",
        root,
        manifest.shard_count,
        f" on Ray ({settings.replicas} replica(s) each)" if settings.ray else " in this process",
        encoder.model_id if encoder else "none",
        settings.bm25_statistics,
    )
    writer = None if settings.read_only else ShardedWriter(searcher)
    reason = "it was started with --read-only" if settings.read_only else ""
    return LoadedIndex(searcher, writer, read_only_reason=reason)
