"""Typed document metadata: a collection's schema of filterable fields, and filters over it."""
