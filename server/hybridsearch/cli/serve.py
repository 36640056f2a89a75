"""`hybridsearch serve`: validate the settings, then serve (one process, or forked workers)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

from hybridsearch.config import ServerSettings, add_settings_arguments, settings_from
from hybridsearch.errors import HybridSearchError, SettingsError


def add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("serve", help="serve an index over gRPC")
    add_settings_arguments(p)
    p.add_argument("--log-level", default="INFO", help="logging level (access logs: INFO)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from hybridsearch.logs import configure_logging  # noqa: PLC0415 (imports no grpc)

    try:
        settings = settings_from(args)
    except ValueError as exc:
        raise HybridSearchError(str(exc)) from exc
    configure_logging(args.log_level, settings.log_format)
    if settings.workers < 1:
        raise HybridSearchError(f"--workers must be >= 1, got {settings.workers}")
    if settings.follow_interval_s < 0:
        raise SettingsError(f"--follow-interval-s must be >= 0, got {settings.follow_interval_s}")
    if not 0 <= settings.compact_dead_fraction < 1:
        raise SettingsError(
            f"--compact-dead-fraction must be in [0, 1), got {settings.compact_dead_fraction}"
        )
    if settings.compact_min_dead_rows < 0:
        raise SettingsError(
            f"--compact-min-dead-rows must be >= 0, got {settings.compact_min_dead_rows}"
        )
    if settings.workers > 1 and settings.metrics_port:
        raise HybridSearchError(
            "--metrics-port with --workers > 1 is not supported yet (each worker would bind it)"
        )
    if settings.workers > 1:
        from hybridsearch.cli.workers import serve_workers  # noqa: PLC0415

        return serve_workers(settings, _serve_process)  # forks before grpc is imported
    return _serve_process(settings, None)


def _serve_process(settings: ServerSettings, announce: Callable[[str], None] | None) -> int:
    from hybridsearch.api.server import serve  # noqa: PLC0415
    from hybridsearch.engine.loader import load_index  # noqa: PLC0415

    if announce is None:
        return asyncio.run(serve(settings, load_index))
    return asyncio.run(serve(settings, load_index, announce))
