"""The garbage collector's first threshold in a serving process.

A query allocates in bursts: an arm's thousand candidates come out of tantivy as a thousand
tuples, a response is built of messages, and most of it is freed by reference counting as
soon as the query ends. With CPython's default first-generation threshold (700 container
objects more allocated than freed) such a burst starts a collection in the middle of nearly
every hybrid query: 293 collections for SciFact's 300 test queries in process, 0.16-0.2 ms
per query; at 1,500 or more, none. Cycles that do form are still collected, a little later,
and long-lived objects are untouched (the older generations keep their thresholds).

Measured through the server beside the commit before (bench/results/2026-12-02-gc-threshold-
2500-overhead.md, and at 10,000 -gc-threshold-overhead.md; 3 interleaved rounds each, on a
busy machine): hybrid server CPU per query 0.94-0.96x at c8 and c32, lower in all 12
rounds there; sparse moved up to 30 % from round to round, both ways, with no effect shown.
"""

from __future__ import annotations

import gc

#: The first-generation threshold of a serving process (CPython's default: 700).
SERVING_GEN0_THRESHOLD = 2_500


def tune_collector_for_serving() -> None:
    """Raise the first-generation threshold to `SERVING_GEN0_THRESHOLD` (the older
    generations' thresholds kept)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(SERVING_GEN0_THRESHOLD, older, oldest)
