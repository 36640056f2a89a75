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
    args = build_parser().parse_args(argv)
    quiet_grpc_logs(args)
    try:
        code: int = args.func(args)
    except HybridSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered
    does not fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
