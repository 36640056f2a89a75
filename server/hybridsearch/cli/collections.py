"""`hybridsearch collections create|list|get|delete|alias`: CollectionService from the shell.

Every subcommand takes the connection flags of `search` (``--server``, TLS, token); a server
with auth on needs a full-access token for all of them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridsearch.cli.channel import add_channel_arguments, call_and_print, call_metadata
from hybridsearch.cli.flag_types import timeout_seconds
from hybridsearch.errors import HybridSearchError

if TYPE_CHECKING:
    from hybridsearch.v1 import collection_pb2 as pb

DENSE_KINDS = ("exact", "hnsw")


def add_collections_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``collections`` and its subcommands."""
    p = commands.add_parser("collections", help="create, list, describe, delete and alias")
    sub = p.add_subparsers(dest="collections_command", required=True)

    create = sub.add_parser("create", help="create an empty collection")
    create.add_argument("name", help="1-64 of a-z, 0-9, _ and -, starting with a letter/digit")
    create.add_argument("--schema", type=Path, help="metadata schema file (JSON or TOML)")
    create.add_argument(
        "--model",
        default="",
        help="model directory name the server knows (`default`: its --model); none: BM25-only",
    )
    create.add_argument("--dense-index", choices=DENSE_KINDS, default="exact")
    create.add_argument(
        "--shards",
        type=_shard_count,
        default=0,
        help="a sharded collection of this many shards (documents routed by a hash of their "
        "id; on Ray when the server runs with --ray); 0: one index directory",
    )
    create.set_defaults(func=_run(_create))

    listing = sub.add_parser("list", help="list every collection")
    listing.set_defaults(func=_run(_list))

    get = sub.add_parser("get", help="describe one collection (name or alias)")
    get.add_argument("name")
    get.set_defaults(func=_run(_get))

    delete = sub.add_parser("delete", help="delete a collection and its aliases")
    delete.add_argument("name", help="a collection's own name (not an alias)")
    delete.set_defaults(func=_run(_delete))

    alias = sub.add_parser(
        "alias",
        help="set or remove aliases, atomically: `alias set A C`, `alias remove A`, or "
        "`alias --set A=C --remove B ...` (applied in order, all or none)",
    )
    alias.add_argument("action", nargs="?", choices=("set", "remove"))
    alias.add_argument("names", nargs="*", metavar="NAME", help="ALIAS [COLLECTION]")
    alias.add_argument("--set", action="append", default=[], metavar="ALIAS=COLLECTION")
    alias.add_argument("--remove", action="append", default=[], metavar="ALIAS")
    alias.set_defaults(func=_run(_alias))

    imported = sub.add_parser(
        "import",
        help="offline: copy an index built by `hybridsearch index` into a data directory as a "
        "collection (the server on that directory must be stopped)",
    )
    imported.add_argument("name", help="the new collection's name")
    imported.add_argument(
        "--from-index",
        type=Path,
        required=True,
        help="an index directory, or a sharded collection (`index --shards N`, `shards split`)",
    )
    imported.add_argument("--data-dir", type=Path, required=True, help="the data directory")
    imported.add_argument(
        "--model",
        default=None,
        help="model directory name the server queries it with (default: `default` for an "
        "index with vectors, none for BM25-only)",
    )
    imported.add_argument(
        "--default", action="store_true", help="make it the data directory's default collection"
    )
    imported.set_defaults(func=_import)

    for parser in (create, listing, get, delete, alias):
        add_channel_arguments(parser)
        parser.add_argument(
            "--timeout", type=timeout_seconds, default=60.0, help="deadline in seconds"
        )
        parser.add_argument("--json", action="store_true", help="print the response as JSON")


Call = Callable[[Any, argparse.Namespace], Any]


def _shard_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0 (got {text!r})")
    return count


def _run(call: Call) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from hybridsearch.v1 import collection_pb2_grpc  # noqa: PLC0415

        def on(channel: Any) -> Any:
            return call(collection_pb2_grpc.CollectionServiceStub(channel), args)

        return call_and_print(args, on, _print)

    return run


def _import(args: argparse.Namespace) -> int:
    from hybridsearch.engine.collection_import import import_index  # noqa: PLC0415

    try:
        entry = import_index(
            args.data_dir,
            args.name,
            args.from_index,
            model=args.model,
            make_default=args.default,
        )
    except HybridSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    encoder = f"model {entry.model!r}" if entry.model else "BM25 only"
    shards = f", {entry.shards} shards" if entry.shards else ""
    print(f"imported {args.from_index} as {entry.name!r} into {args.data_dir} ({encoder}{shards})")
    return 0


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {"timeout": args.timeout, "metadata": call_metadata(args)}


def _create(stub: Any, args: argparse.Namespace) -> Any:
    from hybridsearch.v1 import collection_pb2 as pb  # noqa: PLC0415

    request = pb.CreateCollectionRequest(
        name=args.name,
        model=args.model,
        dense_index=pb.DenseIndexKind.Value(f"DENSE_INDEX_KIND_{args.dense_index.upper()}"),
        shards=args.shards,
    )
    if args.schema is not None:
        request.schema.CopyFrom(_schema_message(args.schema))
    return stub.CreateCollection(request, **_options(args))


def _schema_message(path: Path) -> pb.CollectionSchema:
    from hybridsearch.api.collection_convert import schema_to_proto  # noqa: PLC0415
    from hybridsearch.metadata.schema import load_schema_file  # noqa: PLC0415
    from hybridsearch.v1 import collection_pb2 as pb  # noqa: PLC0415

    message = pb.CollectionSchema()
    schema_to_proto(load_schema_file(path), message)
    return message


def _list(stub: Any, args: argparse.Namespace) -> Any:
    from hybridsearch.v1 import collection_pb2 as pb  # noqa: PLC0415

    return stub.ListCollections(pb.ListCollectionsRequest(), **_options(args))


def _get(stub: Any, args: argparse.Namespace) -> Any:
    from hybridsearch.v1 import collection_pb2 as pb  # noqa: PLC0415

    return stub.GetCollection(pb.GetCollectionRequest(name=args.name), **_options(args))


def _delete(stub: Any, args: argparse.Namespace) -> Any:
    from hybridsearch.v1 import collection_pb2 as pb  # noqa: PLC0415

    return stub.DeleteCollection(pb.DeleteCollectionRequest(name=args.name), **_options(args))


def alias_actions(args: argparse.Namespace) -> list[pb.AliasAction]:
    """The actions of `collections alias`, in the order given (positional form first)."""
    from hybridsearch.v1 import collection_pb2 as pb  # noqa: PLC0415

    actions: list[pb.AliasAction] = []
    if args.action == "set":
        if len(args.names) != 2:
            raise HybridSearchError("usage: collections alias set ALIAS COLLECTION")
        actions.append(
            pb.AliasAction(add=pb.AddAlias(alias=args.names[0], collection=args.names[1]))
        )
    elif args.action == "remove":
        if len(args.names) != 1:
            raise HybridSearchError("usage: collections alias remove ALIAS")
        actions.append(pb.AliasAction(remove=pb.RemoveAlias(alias=args.names[0])))
    elif args.names:
        raise HybridSearchError("give `set` or `remove` before the names")
    for pair in args.set:
        alias, sep, collection = pair.partition("=")
        if not sep:
            raise HybridSearchError(f"--set takes ALIAS=COLLECTION (got {pair!r})")
        actions.append(pb.AliasAction(add=pb.AddAlias(alias=alias, collection=collection)))
    actions += [pb.AliasAction(remove=pb.RemoveAlias(alias=a)) for a in args.remove]
    if not actions:
        raise HybridSearchError("nothing to do: `alias set A C`, `alias remove A`, --set, --remove")
    return actions


def _alias(stub: Any, args: argparse.Namespace) -> Any:
    from hybridsearch.v1 import collection_pb2 as pb  # noqa: PLC0415

    request = pb.UpdateAliasesRequest(actions=alias_actions(args))
    return stub.UpdateAliases(request, **_options(args))


def _print(response: Any) -> None:
    """Human-readable output of each response kind."""
    from hybridsearch.v1 import collection_pb2 as pb  # noqa: PLC0415

    if isinstance(response, pb.ListCollectionsResponse):
        for line in list_table(response.collections):
            print(line)
    elif isinstance(response, (pb.CreateCollectionResponse, pb.GetCollectionResponse)):
        _print_info(response.collection)
    elif isinstance(response, pb.DeleteCollectionResponse):
        removed = ", ".join(response.removed_aliases) or "none"
        print(f"deleted (aliases removed: {removed})")
    elif isinstance(response, pb.UpdateAliasesResponse):
        for alias, collection in sorted(response.aliases.items()):
            print(f"{alias} -> {collection}")
        if not response.aliases:
            print("no aliases")


def _dense_name(value: pb.DenseIndexKind.ValueType) -> str:
    from hybridsearch.v1 import collection_pb2 as pb  # noqa: PLC0415

    return pb.DenseIndexKind.Name(value).removeprefix("DENSE_INDEX_KIND_").lower()


def list_table(infos: Sequence[pb.CollectionInfo]) -> list[str]:
    """The lines of `collections list`: a header and one row per collection, the name and
    encoder columns as wide as their longest entry (at least 20 and 24 characters)."""
    names = [_listed_name(info) for info in infos]
    encoders = [info.encoder_model_id or "- (BM25 only)" for info in infos]
    name_width = max([20, *(len(n) for n in names)])
    encoder_width = max([24, *(len(e) for e in encoders)])
    lines = [
        f"{'NAME':<{name_width}} {'DOCS':>8} {'BYTES':>10} {'ENCODER':<{encoder_width}} "
        f"{'DENSE':<6} ALIASES"
    ]
    for info, name, encoder in zip(infos, names, encoders, strict=True):
        dense = _dense_name(info.dense_index) if info.encoder_model_id else "-"
        aliases = ", ".join(info.aliases) or "-"
        counts = f"{info.document_count:>8} {info.size_bytes:>10}"
        row = f"{name:<{name_width}} {counts} {encoder:<{encoder_width}} {dense:<6} {aliases}"
        lines.append(row)
    return lines


def _listed_name(info: pb.CollectionInfo) -> str:
    name = info.name + (" *" if info.default else "")
    if info.shard_count:
        missing = f", {len(info.missing_shards)} missing" if info.missing_shards else ""
        name += f" ({info.shard_count} shards{missing})"
    return name


def _print_info(info: pb.CollectionInfo) -> None:
    from hybridsearch.v1 import collection_pb2 as pb  # noqa: PLC0415

    print(f"name:       {info.name}{' (default)' if info.default else ''}")
    print(f"documents:  {info.document_count}")
    print(f"bytes:      {info.size_bytes}")
    print(f"encoder:    {info.encoder_model_id or '- (BM25 only)'}")
    if info.encoder_model_id:
        print(f"dense:      {_dense_name(info.dense_index)}")
    if info.shard_count:
        print(f"shards:     {info.shard_count}")
    if info.missing_shards:
        missing = ", ".join(str(s) for s in info.missing_shards)
        print(f"missing:    shard(s) {missing} (no live replica now; counts leave them out)")
    print(f"generation: {info.generation}")
    print(f"aliases:    {', '.join(info.aliases) or '-'}")
    if info.HasField("created_time"):
        print(f"created:    {info.created_time.ToJsonString()}")
    print("schema:" + ("" if info.schema.fields else "     - (no filterable fields)"))
    for field in info.schema.fields:
        kind = pb.MetadataType.Name(field.type).removeprefix("METADATA_TYPE_").lower()
        print(f"  {field.name}: {kind}{' (multi-valued)' if field.multi_valued else ''}")
