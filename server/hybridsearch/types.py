"""Domain types shared by the engine, its arms and the API layer (no grpc here)."""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hybridsearch.metadata.filter import Filter


class Device(enum.Enum):
    """Where the encoder runs."""

    AUTO = "auto"  # CUDA when onnxruntime offers it, else CPU
    CPU = "cpu"
    CUDA = "cuda"  # CUDA or an error: never a silent CPU fallback


class RetrievalMode(enum.Enum):
    """Which arms a query runs."""

    HYBRID = "hybrid"
    DENSE = "dense"
    SPARSE = "sparse"


class FusionMethod(enum.Enum):
    """How the sparse and dense lists are combined."""

    INTERPOLATION = "interpolation"
    RRF = "rrf"
    #: Interpolation at an alpha chosen per query by a small model (`fusion.adaptive`).
    ADAPTIVE = "adaptive"


class Normalization(enum.Enum):
    """Per-list score normalisation applied before interpolation."""

    MIN_MAX = "min_max"
    Z_SCORE = "z_score"
    NONE = "none"


class VectorPrfMethod(enum.Enum):
    """Vector pseudo-relevance feedback of the dense arm."""

    NONE = "none"
    AVERAGE = "average"
    ROCCHIO = "rocchio"


class PrfStage(enum.Enum):
    """Where PRF sits relative to fusion in hybrid mode (Li et al., SIGIR 2022)."""

    BEFORE = "before"
    AFTER = "after"
    BOTH = "both"


class StoredField(enum.Enum):
    """Stored document fields a hit can carry."""

    TITLE = "title"
    TEXT = "text"
    METADATA = "metadata"


@dataclass(frozen=True, slots=True)
class Document:
    """A document as ingested: external id, title, body text and a JSON-object metadata."""

    id: str
    title: str = ""
    text: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


def unicode_problem(text: str) -> str | None:
    """Why ``text`` has no UTF-8 form, or None when it has one. Only a surrogate code point
    (U+D800..U+DFFF) has none: Python's JSON reader makes one of an escape such as
    ``"\\ud83d"`` that is not half of a pair, and its decoding of command-line arguments one
    of each byte that is not UTF-8. The answer names the first one, not the text around it
    (which may be a whole document)."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return f"not valid Unicode (a lone surrogate \\u{code:04x} at character {exc.start + 1})"
    return None


#: The longest document id (UTF-8 bytes) by default; a server setting may change it.
MAX_ID_BYTES = 512


def document_id_problem(doc_id: str, max_id_bytes: int = MAX_ID_BYTES) -> str | None:
    """Why ``doc_id`` cannot be a document id, or None when it can: every RPC that takes an
    id checks this (`engine.document_rules.id_problem`), and so does a corpus read, so that
    no built document has an id the API refuses to fetch, delete or replace."""
    if not doc_id.strip():
        return "empty id: a document needs a non-whitespace id"
    if (problem := unicode_problem(doc_id)) is not None:
        return f"id is {problem}"
    if len(doc_id.encode("utf-8")) > max_id_bytes:
        return f"id longer than {max_id_bytes} bytes"
    if "\x00" in doc_id:
        return "id contains a NUL character"
    return None


@dataclass(frozen=True, slots=True)
class FusionSettings:
    """Fully resolved fusion settings (every value set)."""

    method: FusionMethod = FusionMethod.INTERPOLATION
    alpha: float = 0.5
    normalization: Normalization = Normalization.MIN_MAX
    rrf_k: int = 60
    rrf_sparse_weight: float = 1.0
    rrf_dense_weight: float = 1.0
    sparse_depth: int = 1000
    dense_depth: int = 1000
    #: The model file of ADAPTIVE fusion; None: the model shipped in the package. The server
    #: loads it at start-up (`fusion.adaptive.load_model`), so a query never reads it.
    adaptive_model: Path | None = None


#: Vector PRF feedback depth when a request does not set one (Li et al., TOIS 2023).
DEFAULT_VECTOR_PRF_DEPTH = {VectorPrfMethod.AVERAGE: 3, VectorPrfMethod.ROCCHIO: 5}


@dataclass(frozen=True, slots=True)
class PrfSettings:
    """Fully resolved pseudo-relevance feedback settings; the default is off."""

    rm3: bool = False
    fb_docs: int = 10
    fb_terms: int = 10
    original_query_weight: float = 0.5
    vector_method: VectorPrfMethod = VectorPrfMethod.NONE
    vector_depth: int = 3
    rocchio_alpha: float = 0.4
    rocchio_beta: float = 0.6
    hybrid_stage: PrfStage = PrfStage.AFTER

    @property
    def enabled(self) -> bool:
        """Whether any feedback runs."""
        return self.rm3 or self.vector_method is not VectorPrfMethod.NONE


@dataclass(frozen=True, slots=True)
class Query:
    """One fully resolved query (defaults already applied by the caller)."""

    text: str
    top_k: int = 10
    mode: RetrievalMode = RetrievalMode.HYBRID
    fusion: FusionSettings = field(default_factory=FusionSettings)
    explain: bool = False
    return_fields: frozenset[StoredField] = frozenset()
    prf: PrfSettings = field(default_factory=PrfSettings)
    #: Hits of the full ranking skipped before the first returned (pagination).
    offset: int = 0
    #: Snippets with matched terms on every hit; None: no highlights.
    highlight: HighlightSettings | None = None
    #: Only documents this filter matches, in every arm (shape checked; fields are checked
    #: against the searched index's schema when it runs). None: no filter.
    filter: Filter | None = None
    #: A sharded collection whose shard has no live replica answers from the other shards
    #: (naming the missing ones) instead of failing UNAVAILABLE.
    allow_partial: bool = False


@dataclass(frozen=True, slots=True)
class HighlightSettings:
    """Fully resolved highlight settings."""

    max_chars: int = 200  # longest snippet, in code points


class ScoredDoc(NamedTuple):
    """One entry of an arm's ranked list: internal ordinal and raw score."""

    ordinal: int
    score: float


class RankedList(Sequence[ScoredDoc]):
    """An arm's ranked list kept as two arrays (ordinals, scores), read as ``ScoredDoc``s.

    An arm returns up to a thousand candidates per query; building a Python object for each
    held the GIL for a quarter of a busy server's Python time. Fusion reads the arrays
    (`ordinals`, `scores`) directly; anything else may iterate, index or slice the list as
    a sequence of ``ScoredDoc`` (made on access), and it equals any sequence of the same
    pairs.
    """

    __slots__ = ("ordinals", "scores")

    def __init__(self, ordinals: ArrayLike, scores: ArrayLike) -> None:
        self.ordinals: NDArray[np.int64] = np.asarray(ordinals, dtype=np.int64).reshape(-1)
        self.scores: NDArray[np.float64] = np.asarray(scores, dtype=np.float64).reshape(-1)
        if self.ordinals.shape != self.scores.shape:
            raise ValueError(
                f"{len(self.ordinals)} ordinals but {len(self.scores)} scores in a ranked list"
            )

    def __len__(self) -> int:
        return len(self.ordinals)

    @overload
    def __getitem__(self, index: int) -> ScoredDoc: ...

    @overload
    def __getitem__(self, index: slice) -> RankedList: ...

    def __getitem__(self, index: int | slice) -> ScoredDoc | RankedList:
        if isinstance(index, slice):
            return RankedList(self.ordinals[index], self.scores[index])
        return ScoredDoc(int(self.ordinals[index]), float(self.scores[index]))

    def __iter__(self) -> Iterator[ScoredDoc]:
        return map(ScoredDoc._make, zip(self.ordinals.tolist(), self.scores.tolist(), strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside: not hashable

    def __repr__(self) -> str:
        return f"RankedList({list(self)!r})"


@dataclass(frozen=True, slots=True)
class ArmScore:
    """One arm's view of a fused hit."""

    raw_score: float
    rank: int
    normalized_score: float


@dataclass(frozen=True, slots=True)
class FusedDoc:
    """One entry of a fused list: ordinal, fused score and each arm's view (None: not retrieved)."""

    ordinal: int
    score: float
    sparse: ArmScore | None
    dense: ArmScore | None


@dataclass(frozen=True, slots=True)
class HitExplanation:
    """Why a hit ranked where it did."""

    sparse: ArmScore | None
    dense: ArmScore | None
    fused_score: float


class TextSpan(NamedTuple):
    """A range of a string in Unicode code points: ``[start, end)``."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Highlight:
    """A snippet of one stored field with where the query's terms matched in it."""

    field: StoredField
    snippet: str
    matches: tuple[TextSpan, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked document of a result (``rank`` 1-based in the full ranking, after any
    offset)."""

    id: str
    score: float
    rank: int
    title: str | None = None
    text: str | None = None
    metadata: Mapping[str, Any] | None = None
    explanation: HitExplanation | None = None
    highlights: tuple[Highlight, ...] = ()


def elapsed_us(since: float) -> int:
    """Whole microseconds from ``since`` (a `time.perf_counter` reading) to now: how a stage's
    `StageTimings` field is measured."""
    return int((time.perf_counter() - since) * 1_000_000)


@dataclass(slots=True)
class StageTimings:
    """Wall-clock stage durations of one query, in microseconds."""

    total_us: int = 0
    encode_us: int = 0
    dense_us: int = 0
    sparse_us: int = 0
    fusion_us: int = 0
    fetch_us: int = 0
    prf_us: int = 0


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The ranked result of one query, with its timings and the query as applied.

    ``expansion_terms``: the RM3-expanded BM25 query (term → weight, heaviest first) when the
    query asked for an explanation and RM3 ran; else empty.
    """

    hits: list[Hit]
    timings: StageTimings
    applied: Query
    expansion_terms: dict[str, float] = field(default_factory=dict)
    #: With ``explain`` and ADAPTIVE fusion: the alpha chosen and the features behind it.
    adaptive: AdaptiveChoice | None = None
    #: Shards of a sharded collection that could not be searched (a partial answer, only
    #: when the query allowed one), ascending; empty: every shard answered.
    missing_shards: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class AdaptiveChoice:
    """What ADAPTIVE fusion chose for one query: the alpha, and the features it saw (by name,
    in the model's order)."""

    alpha: float
    features: dict[str, float]
