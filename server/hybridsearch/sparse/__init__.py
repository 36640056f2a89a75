"""Sparse arm: tantivy BM25 over title + text."""
