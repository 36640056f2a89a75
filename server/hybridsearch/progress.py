"""When the CLI's tqdm progress bars are drawn."""

from __future__ import annotations


def bar_disabled(no_progress: bool) -> bool | None:
    """tqdm's ``disable`` for a bar: True with ``--no-progress``, else None, tqdm's own rule
    of drawing only on a terminal (a log file or a pipe gets no ``\\r`` redraws)."""
    return True if no_progress else None
