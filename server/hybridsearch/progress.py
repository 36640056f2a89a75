"""How the CLI's tqdm progress bars are drawn.

On a terminal, tqdm redraws one line in place. Anywhere else (a log file, a pipe, `docker
logs`) a redraw is a ``\\r`` and cursor escapes, so there the bar becomes a plain line every
`LOG_INTERVAL_S` seconds (and one at the start and the end): long work still shows its
progress, documents/s and ETA in a log.
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

#: Seconds between two progress lines when stderr is not a terminal.
LOG_INTERVAL_S = 10.0
_CURSOR = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LineWriter:
    """A stream for tqdm that writes each redraw as its own line (no ``\\r``, no escapes)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        line = _CURSOR.sub("", text).replace("\r", "").strip()
        if line:
            self._stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def bar_options(no_progress: bool) -> dict[str, Any]:
    """tqdm keyword arguments for a bar: off with ``--no-progress``; in place on a terminal;
    else a line every `LOG_INTERVAL_S` seconds."""
    if no_progress:
        return {"disable": True}
    stderr = sys.stderr
    if stderr is not None and stderr.isatty():
        return {}
    return {"file": LineWriter(stderr), "mininterval": LOG_INTERVAL_S, "ascii": True}
