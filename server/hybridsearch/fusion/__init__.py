"""Score fusion: pure functions (normalisation, interpolation, RRF)."""

from hybridsearch.fusion.interpolate import fuse_interpolate
from hybridsearch.fusion.normalize import missing_floor, normalize_scores
from hybridsearch.fusion.rrf import fuse_rrf

__all__ = ["fuse_interpolate", "fuse_rrf", "missing_floor", "normalize_scores"]
