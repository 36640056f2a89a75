"""What SIGTERM/SIGINT ask of a serving process, phase by phase.

The first signal begins the shutdown. When the server is serving and ``--shutdown-delay-s``
is above 0, the shutdown delay comes first: health reports NOT_SERVING while calls are still
answered, so that load balancers and readiness probes stop sending calls here before the
port closes. The graceful stop follows (new calls refused, in-flight calls get
``--grace-period-s``). A signal during the delay ends it at once, unless it comes within
`REPEAT_WINDOW_S` of the first: with ``--workers`` a signal to the process group (Ctrl-C,
systemd) reaches each worker twice, directly and forwarded by the parent, and that repeat must
not cut the delay. One during the graceful stop only logs how much of the grace period is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import signal
from collections.abc import Callable

log = logging.getLogger(__name__)

#: A signal this soon after the first is taken for the same signal delivered twice.
REPEAT_WINDOW_S = 1.0


class Phase(enum.Enum):
    """Where the shutdown stands."""

    SERVING = "serving"  # no signal yet
    DELAY = "delay"  # NOT_SERVING, calls still answered
    GRACE = "grace"  # new calls refused, in-flight calls finishing


class ShutdownSignals:
    """The shutdown's phase, moved on by signals (on the event loop) and by `serve`."""

    def __init__(self, delay_s: float, grace_s: float, serving: Callable[[], bool]) -> None:
        """``serving``: whether the server has loaded (a delay is pointless before: health
        has reported NOT_SERVING all along)."""
        self.delay_s = delay_s
        self.grace_s = grace_s
        self._serving = serving
        self.phase = Phase.SERVING
        self.requested = asyncio.Event()  # the first signal came
        self._delay_over = asyncio.Event()  # a second signal cut the delay short
        self._first_at = 0.0
        self._grace_began = 0.0

    def on_signal(self, sig: signal.Signals) -> None:
        """The handler of SIGTERM and SIGINT."""
        if self.phase is Phase.SERVING:
            self._first_at = _now()
            self.requested.set()
            if self.delay_s > 0 and self._serving():
                self.phase = Phase.DELAY
            else:
                self._begin_grace()
        elif self.phase is Phase.DELAY:
            if _now() - self._first_at < REPEAT_WINDOW_S:
                log.info("%s: the first signal again (a process group's), ignored", sig.name)
                return
            log.warning("%s: ending the shutdown delay early, stopping now", sig.name)
            self._begin_grace()
        else:
            left = max(0.0, self._grace_began + self.grace_s - _now())
            log.warning(
                "%s: shutdown already under way (%.1f s of the %.1f s grace period left)",
                sig.name,
                left,
                self.grace_s,
            )

    async def delay(self) -> None:
        """Wait out the shutdown delay (at once when there is none, or a signal ended it);
        the graceful stop begins on return."""
        if self.phase is Phase.DELAY:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._delay_over.wait(), self.delay_s)
        if self.phase is Phase.DELAY:
            self._begin_grace()

    def _begin_grace(self) -> None:
        self.phase = Phase.GRACE
        self._grace_began = _now()
        self._delay_over.set()


def _now() -> float:
    return asyncio.get_running_loop().time()
