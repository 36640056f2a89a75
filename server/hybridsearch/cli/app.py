"""The argument parser of the `hybridsearch` command and its entry point."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from hybridsearch.cli.channel import quiet_grpc_logs
from hybridsearch.cli.collections import add_collections_command
from hybridsearch.cli.compact import add_compact_command
from hybridsearch.cli.eval import add_eval_command
from hybridsearch.cli.health import add_health_command
from hybridsearch.cli.index import add_index_command
from hybridsearch.cli.ingest import add_ingest_command
from hybridsearch.cli.models import add_models_commands
from hybridsearch.cli.search import add_search_command
from hybridsearch.cli.serve import add_serve_command
from hybridsearch.cli.shards import add_shards_command
from hybridsearch.errors import HybridSearchError
from hybridsearch.types import unicode_problem

#: Text flags that name a file to read (a local path, or a URL): a path is bytes to the OS,
#: so one that is not UTF-8 is fine there. Flags typed `Path` are never checked.
FILE_NAME_FLAGS = frozenset(
    {
        "corpus",
        # serve's files that Python itself opens (any bytes a file system takes); --index,
        # --data-dir and --model reach tantivy and onnxruntime, which need UTF-8 paths.
        "tls_cert",
        "tls_key",
        "tls_client_ca",
        "auth_tokens_file",
        "auth_read_only_tokens_file",
        "adaptive_model",
    }
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="hybridsearch", description="gRPC hybrid dense-sparse search server"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_index_command(commands)
    add_ingest_command(commands)
    add_compact_command(commands)
    add_serve_command(commands)
    add_shards_command(commands)
    add_search_command(commands)
    add_collections_command(commands)
    add_health_command(commands)
    add_models_commands(commands)
    add_eval_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    try:
        try:
            return _run(argv)
        finally:  # a closed pipe then shows here, not in the interpreter's last flush
            sys.stdout.flush()
    except BrokenPipeError:  # stdout's reader left (`... | head`): stop quietly, as `cat` does
        _discard_stdout()
        return 128 + signal.SIGPIPE


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_grpc_logs(args)
    try:
        check_text_arguments(parser, args)
        code: int = args.func(args)
    except HybridSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def check_text_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`HybridSearchError` naming the first text argument that is not valid UTF-8.

    Python decodes each command-line byte that is not UTF-8 into a lone surrogate
    (surrogateescape), which no request, index or JSON file can hold: protobuf refuses to
    encode it, as tantivy does. A file path (a `Path` value, or a `FILE_NAME_FLAGS` flag) is
    left alone.
    """
    for dest, value in vars(args).items():
        if dest in FILE_NAME_FLAGS:
            continue
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and unicode_problem(text) is not None:
                name = _argument_names(parser, args).get(dest, dest)
                raise HybridSearchError(f"argument {name}: {_utf8_problem(text)}")


def _argument_names(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """What each argument of ``parser`` and of the subcommand ``args`` ran is called in its
    usage line (``--collection``, ``query``), by the attribute it sets (only the subcommand
    that ran: another may set the same attribute under another name)."""
    names: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                names.update(_argument_names(chosen, args))
        elif action.option_strings:
            names.setdefault(action.dest, max(action.option_strings, key=len))
        else:
            names.setdefault(action.dest, str(action.metavar or action.dest))
    return names


def _utf8_problem(text: str) -> str:
    """What is wrong with an argument that holds a lone surrogate: the first byte that is not
    UTF-8, when its surrogates stand for bytes (as Python's decoding of the command line
    makes them), else the first surrogate."""
    try:
        text.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at byte {exc.start + 1})"
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        pass
    return str(unicode_problem(text))


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered
    does not fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
