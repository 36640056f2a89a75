"""`hybridsearch shards split`: a sharded collection from an existing index, without encoding.

The shards serve with `serve --index OUT` (in this process) or `serve --index OUT --ray ...`
(each shard as Ray actors); see README "Sharded serving on Ray".
"""

from __future__ import annotations

import argparse
import time

from hybridsearch.cli.flag_types import path_arg


def add_shards_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("shards", help="sharded collections: split an existing index")
    actions = p.add_subparsers(dest="shards_command", required=True)
    split = actions.add_parser(
        "split",
        help="write an index's live documents and stored vectors as N shards (no re-encoding)",
    )
    split.add_argument(
        "--from-index",
        type=path_arg,
        required=True,
        metavar="DIR",
        help="index directory to split",
    )
    split.add_argument("--shards", type=int, required=True, metavar="N", help="shard count")
    split.add_argument(
        "--out", type=path_arg, required=True, metavar="DIR", help="sharded collection to create"
    )
    split.add_argument("--force", action="store_true", help="replace an existing --out")
    split.set_defaults(func=run_split)


def run_split(args: argparse.Namespace) -> int:
    from hybridsearch.errors import BuildError  # noqa: PLC0415
    from hybridsearch.sharding.layout import MAX_SHARDS  # noqa: PLC0415
    from hybridsearch.sharding.split import split_index  # noqa: PLC0415

    if not 1 <= args.shards <= MAX_SHARDS:
        raise BuildError(f"--shards must be in [1, {MAX_SHARDS}] (got {args.shards})")
    started = time.perf_counter()
    summary = split_index(args.from_index, args.out, args.shards, force=args.force)
    counts = ", ".join(str(s.documents) for s in summary.shards)
    shards = "1 shard" if len(summary.shards) == 1 else f"{len(summary.shards)} shards"
    print(
        f"split {args.from_index} into {shards} at {args.out}: "
        f"{summary.documents} documents ({counts}), {summary.bytes_on_disk / 1e6:.1f} MB, "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return 0
