"""Pseudo-relevance feedback: RM3 (sparse) and vector PRF (dense)."""
