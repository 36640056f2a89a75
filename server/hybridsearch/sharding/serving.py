"""`serve --index SHARDED_DIR [--ray auto|ADDRESS --replicas R]`: the sharded front loaded.

Without ``--ray`` every shard is opened in this process (`LocalShardGroup`); with it each
shard runs as ``--replicas`` Ray actors (`ray_group.RayShardGroup`, imported only then: the
default install needs no Ray). The query encoder is loaded here, once, for the front.
"""

from __future__ import annotations

import logging
from typing import Any

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
from hybridsearch.sharding.layout import is_sharded, load_shard_manifest
from hybridsearch.sharding.searcher import ShardedSearcher, ShardedWriter

log = logging.getLogger(__name__)


def load_sharded(settings: ServerSettings) -> LoadedIndex:
    """The sharded collection at ``settings.index``, served (see the module docstring)."""
    root = settings.index
    if not is_sharded(root):
        raise SettingsError(f"--ray / HYBRIDSEARCH_RAY: {root} is not a sharded collection")
    manifest = load_shard_manifest(root)
    worker_options: dict[str, Any] = {
        "writable": not settings.read_only,
        "follow_interval_s": settings.follow_interval_s,
        "compaction": compaction_policy(settings),
        "ef_search": settings.hnsw_ef_search,
        "exact_filter_fraction": settings.hnsw_exact_filter_fraction,
    }
    # The encoder first: a wrong --model fails before any Ray actor starts.
    encoder: Encoder | None = None
    if manifest.encoder is not None:
        model = resolve_model_dir(settings.model, manifest.encoder)
        if model is not None:
            encoder = serving_encoder(settings, model, manifest.encoder.max_length)
    group: ShardGroup
    if settings.ray:
        from hybridsearch.sharding.ray_group import RayShardGroup  # noqa: PLC0415
        from hybridsearch.sharding.ray_runtime import RayRuntime  # noqa: PLC0415

        # `serve --ray` started Ray already (cli.serve: main thread, before gRPC); a library
        # caller that did not gets a Ray of this group's own, stopped when it closes.
        runtime = RayRuntime(settings.ray)
        try:
            group = RayShardGroup(
                root,
                manifest,
                replicas=settings.replicas,
                replica_cpus=settings.ray_replica_cpus,
                runtime=runtime if runtime.connected else None,
                **worker_options,
            )
        except BaseException:
            runtime.close()
            raise
    else:
        group = LocalShardGroup(root, manifest, **worker_options)
    searcher = ShardedSearcher(
        group,
        manifest,
        encoder,
        batching=batching_settings(settings),
        arm_threads=settings.search_threads,
        bm25_statistics=settings.bm25_statistics,
    )
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
