"""The shutdown's phases as signals move them (`api.shutdown`)."""

from __future__ import annotations

import asyncio
import signal

from hybridsearch.api.shutdown import REPEAT_WINDOW_S, Phase, ShutdownSignals


def test_a_repeat_of_the_first_signal_does_not_end_the_delay() -> None:
    # With --workers, a signal to the process group reaches each worker twice (directly and
    # forwarded by the parent): the repeat cut the worker's delay to nothing.
    async def scenario() -> list[Phase]:
        signals = ShutdownSignals(60.0, 10.0, lambda: True)
        phases = []
        signals.on_signal(signal.SIGTERM)
        phases.append(signals.phase)
        signals.on_signal(signal.SIGTERM)  # the same signal, delivered again at once
        phases.append(signals.phase)
        await asyncio.sleep(REPEAT_WINDOW_S + 0.1)
        signals.on_signal(signal.SIGINT)  # a later one ends the delay
        phases.append(signals.phase)
        return phases

    assert asyncio.run(scenario()) == [Phase.DELAY, Phase.DELAY, Phase.GRACE]


def test_without_a_delay_or_before_the_load_the_first_signal_begins_the_grace() -> None:
    async def first_phase(delay_s: float, loaded: bool) -> Phase:
        signals = ShutdownSignals(delay_s, 10.0, lambda: loaded)
        signals.on_signal(signal.SIGTERM)
        return signals.phase

    assert asyncio.run(first_phase(0.0, True)) is Phase.GRACE
    assert asyncio.run(first_phase(5.0, False)) is Phase.GRACE
