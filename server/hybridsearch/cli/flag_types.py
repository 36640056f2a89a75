"""Argument types of the CLI's numeric flags: a value out of range is argparse's one-line
error (exit 2), not a traceback from the protobuf field or the library it reaches."""

from __future__ import annotations

import argparse
from collections.abc import Callable

#: The largest value of a uint32 request field (``top_k``, ``offset``).
UINT32_MAX = 2**32 - 1


def int_in_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers from ``low`` to ``high`` (None: no bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {bound} (got {value})")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


positive_int = int_in_range(1)
