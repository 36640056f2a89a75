"""Vector pseudo-relevance feedback for the dense arm.

Li, Zhuang, Mourad, Koopman & Zuccon, "Pseudo Relevance Feedback with Deep Language Models
and Dense Retrievers: Successes and Pitfalls", ACM TOIS 41(3), 2023 (Vector-PRF): the query
embedding is replaced by a combination of itself and the embeddings of the top-k documents
of the first dense pass, then the index is searched again with it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def _check_vectors(
    query: NDArray[np.float32], feedback: NDArray[np.float32]
) -> NDArray[np.float64]:
    """Validate shapes and values; returns the feedback as a (k, dim) float64 matrix."""
    if query.ndim != 1 or query.size == 0:
        raise ValueError(f"query must be a non-empty 1-D vector, got shape {query.shape}")
    matrix = np.asarray(feedback, dtype=np.float64)
    if matrix.ndim == 1 and matrix.size == 0:
        matrix = matrix.reshape(0, query.size)
    if matrix.ndim != 2 or matrix.shape[1] != query.size:
        raise ValueError(
            f"feedback must have shape (k, {query.size}), got shape {np.shape(feedback)}"
        )
    if not (np.isfinite(query).all() and np.isfinite(matrix).all()):
        raise ValueError("query and feedback vectors must be finite")
    return matrix


def _unit_l2(vector: NDArray[np.float64]) -> NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        return vector.astype(np.float32)
    return (vector / norm).astype(np.float32)


def vector_prf_average(
    query: NDArray[np.float32], feedback: NDArray[np.float32]
) -> NDArray[np.float32]:
    """Vector-PRF Average: ``q' = (q + Σ_{i=1..k} p_i) / (k + 1)``, L2-normalised.

    ``feedback`` holds the k feedback document embeddings as rows (shape ``(k, dim)``). With
    no feedback (k = 0) the query is returned unchanged (as a float32 copy). The result is
    L2-normalised so that inner-product search scores stay cosines (the encoders here emit
    unit vectors); a zero vector stays zero.

    Raises:
        ValueError: a shape mismatch or a non-finite value.
    """
    matrix = _check_vectors(query, feedback)
    if matrix.shape[0] == 0:
        return np.array(query, dtype=np.float32, copy=True)
    combined = (query.astype(np.float64) + matrix.sum(axis=0)) / (matrix.shape[0] + 1)
    return _unit_l2(combined)


def vector_prf_rocchio(
    query: NDArray[np.float32],
    feedback: NDArray[np.float32],
    *,
    alpha: float = 0.4,
    beta: float = 0.6,
) -> NDArray[np.float32]:
    """Vector-PRF Rocchio: ``q' = α · q + β · (1/k) Σ_{i=1..k} p_i``, L2-normalised.

    Rocchio's relevance feedback (Rocchio, 1971) without the non-relevant term, applied to
    embeddings as in Li et al. (TOIS 2023), who report α 0.4, β 0.6 among the best settings.
    With no feedback the query is returned unchanged (as a float32 copy).

    Raises:
        ValueError: ``alpha`` or ``beta`` negative or not finite, or both zero; a shape
            mismatch or a non-finite vector value (programming errors: requests are validated
            first, by `engine.request.resolve_query`).
    """
    for name, value in (("alpha", alpha), ("beta", beta)):
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if alpha == 0.0 and beta == 0.0:
        raise ValueError("alpha and beta cannot both be 0")
    matrix = _check_vectors(query, feedback)
    if matrix.shape[0] == 0:
        return np.array(query, dtype=np.float32, copy=True)
    combined = alpha * query.astype(np.float64) + beta * matrix.mean(axis=0)
    return _unit_l2(combined)
