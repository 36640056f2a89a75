"""The encoder seam: query/document text → unit-length float32 vectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class QueryTokens:
    """A query tokenised for an encoder: the text it saw (prefix applied) and its token ids
    and type ids (special tokens added, truncated; no padding)."""

    text: str
    ids: Sequence[int]
    type_ids: Sequence[int]

    def __len__(self) -> int:
        return len(self.ids)


class Encoder(Protocol):
    """Turns texts into vectors. Implementations release the GIL while they compute."""

    @property
    def model_id(self) -> str:
        """A stable id of the model (stored in an index manifest; must match at serve time)."""
        ...

    @property
    def dimension(self) -> int:
        """Output dimension."""
        ...

    @property
    def provider(self) -> str:
        """The execution provider that actually serves, e.g. ``CPUExecutionProvider``."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Encode queries (query prefix applied) into an ``(n, dimension)`` array."""
        ...

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int | None = None
    ) -> NDArray[np.float32]:
        """Encode documents (document prefix applied) into an ``(n, dimension)`` array."""
        ...
