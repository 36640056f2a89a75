"""Admission control: a bound on hybridsearch calls in flight; beyond it, RESOURCE_EXHAUSTED.

A refused call is answered at once rather than queued, so an overloaded server stays
responsive and clients can back off or go elsewhere. A call leaves when its behavior ends:
normally, with an error, or cancelled (a caller that went away frees its place). The count is
kept by `api.interceptors.ServingInterceptor`, except for the methods in
`ADMITTED_PER_REQUEST`: a SearchStream holds a place only while a request of it is in work,
an UpsertDocuments stream only while a message of it is applied (`StreamAdmission`), so open
idle streams never keep other calls out.
"""

from __future__ import annotations

from hybridsearch.api.errors import abort_with
from hybridsearch.api.handlers import Context
from hybridsearch.errors import OverloadedError

#: Methods whose calls are counted while they have a request in work, not for their life.
ADMITTED_PER_REQUEST = frozenset(
    {
        "/hybridsearch.v1.SearchService/SearchStream",
        "/hybridsearch.v1.IndexService/UpsertDocuments",
    }
)


class Admission:
    """Counts hybridsearch calls in flight and refuses those past ``max_in_flight``."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # read by the metrics gauge; only the event loop changes it
        # SearchStream requests refused in-band (their streams stay open and finish OK, so the
        # calls' metrics do not show them): read by the metrics counter.
        self.stream_requests_refused = 0

    def full(self) -> bool:
        """Whether a new call would exceed the bound (0: no bound)."""
        return 0 < self.max_in_flight <= self.in_flight

    def refusal(self) -> OverloadedError:
        """Why a call (or a stream's request) is refused."""
        return OverloadedError(
            f"server at capacity ({self.max_in_flight} calls in flight); retry with backoff"
        )

    async def refuse(self, context: Context) -> None:
        """Abort the call with RESOURCE_EXHAUSTED (never returns)."""
        await abort_with(context, self.refusal())


class StreamAdmission:
    """One stream's place among the calls in flight: held while any of its requests is in
    work, let go when none is."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._in_work = 0

    def enter(self) -> bool:
        """Count one more request in work; False (nothing counted) when the stream holds no
        place and the server is full."""
        if self._in_work == 0:
            if self._admission.full():
                return False
            self._admission.in_flight += 1
        self._in_work += 1
        return True

    def refusal(self) -> OverloadedError:
        """Why a request `enter` did not count is refused."""
        return self._admission.refusal()

    def leave(self) -> None:
        """A request entered with `enter` is done (answered, failed or cancelled)."""
        self._in_work -= 1
        if self._in_work == 0:
            self._admission.in_flight -= 1
