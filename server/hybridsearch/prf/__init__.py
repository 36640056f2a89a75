"""Pseudo-relevance feedback: RM3 (sparse) and vector PRF (dense)."""

from hybridsearch.prf.rm3 import FeedbackDoc, rm3_expand
from hybridsearch.prf.vector import vector_prf_average, vector_prf_rocchio

__all__ = ["FeedbackDoc", "rm3_expand", "vector_prf_average", "vector_prf_rocchio"]
