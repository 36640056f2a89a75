"""Ray, imported only on the ``--ray`` paths: a clear error when the extra is not installed,
and one way to join (or start) a cluster."""

from __future__ import annotations

import importlib
import logging
from types import ModuleType

from hybridsearch.errors import SetupError

RAY_EXTRA_HINT = "install the optional Ray extra: pip install -e '.[ray]' (ray[serve,data]==2.60.0)"


def import_ray() -> ModuleType:
    """The ``ray`` module, or a `SetupError` naming the extra that provides it."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise SetupError(
            f"--ray needs Ray, which is not installed ({exc}); {RAY_EXTRA_HINT}"
        ) from None


def connect(address: str) -> ModuleType:
    """Join the Ray cluster at ``address`` and return ``ray``.

    ``auto``: the cluster `ray start` runs on this machine, else a new local instance with
    this machine's CPUs and GPUs; ``local``: always a new local instance; else a head's
    ``host:port``. A process already connected (a test's ``ray.init``) keeps its connection.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    options = {"logging_level": logging.WARNING, "include_dashboard": False}
    if address == "auto":
        try:
            ray.init(address="auto", **options)
            return ray
        except ConnectionError:
            address = "local"  # no running cluster on this machine: start one
    ray.init(address=address, **options)
    return ray
