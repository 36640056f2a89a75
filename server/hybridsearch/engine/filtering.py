"""A query's search scope: which rows each arm may return, after the request's filter.

A filter is bound to the searched snapshot's schema (`metadata.filter.bind_filter`, which
raises INVALID_ARGUMENT naming the field path), then applied to both arms before their top-k:
the dense arm gets ``live & mask`` (the snapshot's live rows the filter matches, from the
metadata columns), the sparse arm the same mask plus the filter compiled into its tantivy
query (so BM25's top-k is taken among matching documents only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tantivy
from numpy.typing import NDArray

from hybridsearch.errors import InvalidArgumentError
from hybridsearch.metadata.filter import Filter, bind_filter
from hybridsearch.sparse.base import SparseBackend
from hybridsearch.sparse.filter_query import FilterCompiler
from hybridsearch.storage.index_dir import OpenIndex


@dataclass(frozen=True, slots=True)
class SearchScope:
    """The rows a query may return: ``live`` for both arms (None: every committed row),
    ``sparse_filter`` the tantivy query of the filter (None: no filter)."""

    live: NDArray[np.bool_] | None
    sparse_filter: tantivy.Query | None = None


def search_scope(
    index: OpenIndex,
    live: NDArray[np.bool_] | None,
    filter_: Filter | None,
    *,
    field_prefix: str = "",
) -> SearchScope:
    """The scope of a query with ``filter_`` over a snapshot (``index`` and its ``live``).

    Raises:
        InvalidArgumentError: the filter names a field the index's schema does not declare,
            or gives a value of another type (paths ``{field_prefix}filter.…``).
    """
    if filter_ is None:
        return SearchScope(live)
    if index.sparse_backend is SparseBackend.LUCENE:
        raise InvalidArgumentError.single(
            f"{field_prefix}filter",
            "this collection's BM25 side is a Lucene index, which declares no filterable "
            "fields; search it without a filter",
        )
    bound = bind_filter(filter_, index.manifest.schema, field_prefix=field_prefix)
    assert index.columns is not None
    mask = index.columns.mask(bound)
    if live is not None:
        mask &= live[: len(mask)]
    compiler = FilterCompiler(index.tantivy_reader.tantivy_schema, index.manifest.schema)
    return SearchScope(mask, compiler.compile(bound))
