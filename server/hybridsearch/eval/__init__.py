"""Effectiveness evaluation: runs, metrics, alpha sweeps."""
