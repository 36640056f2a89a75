"""Score fusion: pure functions (normalisation, interpolation, RRF)."""
