"""`hybridsearch compact DIR`: rewrite an index directory without its dead rows.

For an index no server is writing (it takes the directory's writer lock); a served index is
compacted by its server, in the background or through the `IndexService.Compact` RPC. A
sharded collection (``shards.json``) is compacted shard by shard, each a complete index.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hybridsearch.cli.flag_types import path_arg
from hybridsearch.errors import IndexLockedError


def add_compact_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "compact", help="rewrite an index without deleted or replaced documents"
    )
    p.add_argument("index", type=path_arg, metavar="DIR", help="index directory")
    p.set_defaults(func=run_compact)


def run_compact(args: argparse.Namespace) -> int:
    from hybridsearch.sharding.layout import is_sharded, load_shard_manifest  # noqa: PLC0415

    root: Path = args.index
    if not is_sharded(root):
        _compact_index(root)
        return 0
    shards = load_shard_manifest(root).shard_paths(root)
    print(f"compacting {root}: a sharded collection of {len(shards)} shards, one by one")
    for shard in shards:
        _compact_index(shard)
    return 0


def _compact_index(index: Path) -> None:
    from hybridsearch.storage.manifest import load_manifest  # noqa: PLC0415
    from hybridsearch.storage.writer import IndexWriter  # noqa: PLC0415

    manifest = load_manifest(index)
    print(
        f"compacting {index}: {manifest.document_count} documents, "
        f"{manifest.deleted_count} dead rows",
        flush=True,
    )
    try:
        writer = IndexWriter(index)
    except IndexLockedError as exc:
        raise IndexLockedError(
            f"{exc}; compact a served index through its server (IndexService.Compact)"
        ) from None
    try:
        outcome = writer.compact()
    finally:
        writer.close()
    if not outcome.rewritten:
        print(
            f"{index} is already compact: {outcome.documents} rows, all live; nothing "
            f"rewritten (generation {outcome.generation})",
            flush=True,
        )
        return
    print(
        f"compacted {index} to generation {outcome.generation}: removed "
        f"{outcome.removed_rows} dead rows, {outcome.size_bytes_before} -> "
        f"{outcome.size_bytes_after} bytes in {outcome.seconds:.2f} s",
        flush=True,
    )
