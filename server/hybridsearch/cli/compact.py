"""`hybridsearch compact DIR`: rewrite an index directory without its dead rows.

For an index no server is writing (it takes the directory's writer lock); a served index is
compacted by its server, in the background or through the `IndexService.Compact` RPC.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hybridsearch.errors import IndexLockedError


def add_compact_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "compact", help="rewrite an index without deleted or replaced documents"
    )
    p.add_argument("index", type=Path, metavar="DIR", help="index directory")
    p.set_defaults(func=run_compact)


def run_compact(args: argparse.Namespace) -> int:
    from hybridsearch.storage.manifest import load_manifest  # noqa: PLC0415
    from hybridsearch.storage.writer import IndexWriter  # noqa: PLC0415

    manifest = load_manifest(args.index)
    print(
        f"compacting {args.index}: {manifest.document_count} documents, "
        f"{manifest.deleted_count} dead rows",
        flush=True,
    )
    try:
        writer = IndexWriter(args.index)
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
            f"{args.index} is already compact: {outcome.documents} rows, all live; nothing "
            f"rewritten (generation {outcome.generation})",
            flush=True,
        )
        return 0
    print(
        f"compacted {args.index} to generation {outcome.generation}: removed "
        f"{outcome.removed_rows} dead rows, {outcome.size_bytes_before} -> "
        f"{outcome.size_bytes_after} bytes in {outcome.seconds:.2f} s",
        flush=True,
    )
    return 0
