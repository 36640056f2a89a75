"""Per-list score normalisation before interpolation.

Min-max and z-score are the two rules compared for hybrid lexical/dense fusion by
Bruch, Gai & Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", ACM TOIS 2023,
and used by Pyserini's hybrid searcher. Both are applied to one ranked list at a time.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hybridsearch.types import Normalization


def normalize_scores(scores: ArrayLike, method: Normalization) -> NDArray[np.float64]:
    """Normalise one list's scores; returns a new float64 array of the same length.

    - ``MIN_MAX``: ``(s - min) / (max - min)``, into [0, 1]. When every score is equal
      (including a one-element list) the spread is zero: every document gets 1.0 (each is
      the best the list has) instead of a division by zero.
    - ``Z_SCORE``: ``(s - mean) / std`` with the population standard deviation (ddof 0).
      When the standard deviation is zero every document gets 0.0 (all at the mean).
    - ``NONE``: the raw scores, unchanged (as float64).

    An empty list gives an empty array.
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if values.size == 0 or method is Normalization.NONE:
        return values.copy()
    if method is Normalization.MIN_MAX:
        low = float(values.min())
        spread = float(values.max()) - low
        if spread <= 0.0:
            return np.ones_like(values)
        return (values - low) / spread
    if method is Normalization.Z_SCORE:
        std = float(values.std())
        if std <= 0.0:
            return np.zeros_like(values)
        return (values - float(values.mean())) / std
    raise ValueError(f"unknown normalisation {method!r}")


def missing_floor(normalized: NDArray[np.float64], method: Normalization) -> float:
    """Normalised score given to a document that this list did not retrieve.

    A document outside a list scored at most as well as the list's last entry, so it gets
    the lowest value the list can express:

    - ``MIN_MAX``: 0.0, which is also the list minimum after min-max.
    - ``Z_SCORE`` and ``NONE``: the list minimum. (0.0 would be wrong for both: in z-score
      units 0.0 is the list *mean*, which would rank an unretrieved document above half the
      retrieved ones; raw scores may be negative or far from zero.)

    An empty list (the arm retrieved nothing) gives 0.0: there is nothing to compare with,
    and every document is equally missing, so the value does not change the order.
    """
    if normalized.size == 0:
        return 0.0
    if method is Normalization.MIN_MAX:
        return 0.0
    return float(normalized.min())
