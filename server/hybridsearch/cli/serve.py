"""`hybridsearch serve`: validate the settings, then serve (one process, or forked workers)."""

from __future__ import annotations

import argparse
import asyncio
import functools
from collections.abc import Callable

from hybridsearch.config import ServerSettings, add_settings_arguments, settings_from
from hybridsearch.startup_files import StartupFiles, check_startup_files


def add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "serve", help="serve an index (--index) or a data directory of collections (--data-dir)"
    )
    add_settings_arguments(p)  # --log-level among them
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from hybridsearch.logs import configure_logging  # noqa: PLC0415 (imports no grpc)

    # Every setting is checked before logging, forking, binding or loading: a bad one stops
    # the start with a SettingsError naming its flag and environment variable.
    settings = settings_from(args).validate()
    # Directories, token and TLS files, before any worker forks; the files are read here only,
    # and every worker serves with what was read and checked.
    files = check_startup_files(settings)
    configure_logging(settings.log_level, settings.log_format)
    serve_process = functools.partial(_serve_process, files=files)
    if settings.workers > 1:
        from hybridsearch.cli.workers import serve_workers  # noqa: PLC0415

        return serve_workers(settings, serve_process)  # forks before grpc is imported
    return serve_process(settings, None)


def _serve_process(
    settings: ServerSettings,
    announce: Callable[[str], None] | None,
    files: StartupFiles | None = None,
) -> int:
    from hybridsearch.api.server import serve  # noqa: PLC0415
    from hybridsearch.engine.data_dir import load_serving  # noqa: PLC0415
    from hybridsearch.serving_gc import tune_collector_for_serving  # noqa: PLC0415

    tune_collector_for_serving()

    # With --ray, Ray starts here, in the main thread, before the gRPC server and any other
    # thread exist, and stops here after the event loop closed and every thread that called it
    # was joined (why: hybridsearch.sharding.ray_runtime). Without it Ray is never imported.
    runtime = None
    if settings.ray:
        from hybridsearch.sharding.ray_runtime import RayRuntime  # noqa: PLC0415

        runtime = RayRuntime(settings.ray)
    try:
        if announce is None:
            return asyncio.run(serve(settings, load_serving, files=files))
        return asyncio.run(serve(settings, load_serving, announce, files))
    finally:
        if runtime is not None:
            runtime.close()
