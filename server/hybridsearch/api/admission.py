"""Admission control: a bound on hybridsearch calls in flight; beyond it, RESOURCE_EXHAUSTED.

A refused call is answered at once rather than queued, so an overloaded server stays
responsive and clients can back off or go elsewhere. A call leaves when its behavior ends:
normally, with an error, or cancelled (a caller that went away frees its place). The count is
kept by `api.interceptors.ServingInterceptor`.
"""

from __future__ import annotations

from hybridsearch.api.errors import abort_with
from hybridsearch.api.handlers import Context
from hybridsearch.errors import OverloadedError


class Admission:
    """Counts hybridsearch calls in flight and refuses those past ``max_in_flight``."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # read by the metrics gauge; only the event loop changes it

    def full(self) -> bool:
        """Whether a new call would exceed the bound (0: no bound)."""
        return 0 < self.max_in_flight <= self.in_flight

    async def refuse(self, context: Context) -> None:
        """Abort the call with RESOURCE_EXHAUSTED (never returns)."""
        await abort_with(
            context,
            OverloadedError(
                f"server at capacity ({self.max_in_flight} calls in flight); retry with backoff"
            ),
        )
