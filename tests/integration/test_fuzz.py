"""Property-based fuzzing of SearchService on a live hybrid server (hypothesis).

More than 10,000 random SearchRequests — random and huge unicode, nested-bracket bombs,
extreme numbers, NaN/inf, every enum value and unknown ones — go out through Search, plus
random BatchSearch and SearchStream calls and raw bytes that are not valid protobuf (or carry
invalid UTF-8 in a string field). Every answer must be a deliberate status: never INTERNAL or
UNKNOWN. The server must be alive and serving afterwards.

To stay quick (generation, not the server, is the slow part), each of the 205 hypothesis
examples draws 5 SearchRequests and a seed, and breeds 45 more from them by crossover and
mutation to extreme values (`expand`); the 50 go out concurrently.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridsearch.v1 import search_pb2 as pb
from hybridsearch.v1 import search_pb2_grpc
from tests.integration.in_process import InProcessServer

ROUNDS = 205
PER_ROUND = 50
BASE_PER_ROUND = 5
MIN_SEARCH_REQUESTS = 10_000
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # a message over max_message_bytes
}
UINT32 = st.integers(0, 2**32 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
SEARCH = "/hybridsearch.v1.SearchService/Search"
BATCH = "/hybridsearch.v1.SearchService/BatchSearch"
STREAM = "/hybridsearch.v1.SearchService/SearchStream"

hostile = st.sampled_from(
    ['"AND (((', "title:", "*", "\\", "NOT OR AND +-&&||!(){}[]^\"~*?:\\/", "\x00", "\u200b",
     "\ufeff", "a" * 41, "🚀 supersonic 🔥", "超音速の境界層", "\U0010ffff", "flow"]
)  # fmt: skip
bombs = st.builds(
    lambda open_, close, n, word: open_ * n + word + close * n,
    st.sampled_from(["(", "[", "{", '"', "((", "(["]),
    st.sampled_from([")", "]", "}", '"', ""]),
    st.integers(0, 12_000),
    st.sampled_from(["flow", "", "boundary layer"]),
)
huge = st.builds(
    lambda unit, n: unit * n,
    st.sampled_from(["x", " ", "é", "🚀", "ab ", "\n", "(", "界"]),
    st.integers(1000, 120_000),
)
WORDS = ["flow", "boundary", "layer", "pasta", "tennis", "rocket", "shock", "the", "of", "é"]
words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
queries = st.one_of(
    words,
    words,
    words,
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0x80, codec="utf-8"), max_size=200),
    st.text(alphabet='abcdefghij (){}[]":*~^', max_size=100),
    hostile,
    bombs,
    huge,
)
any_float = st.floats(allow_nan=True, allow_infinity=True)
enum_value = st.one_of(st.integers(-3, 6), INT32)
small = st.integers(0, 20)
top_k = st.one_of(small, small, small, st.integers(990, 1010), UINT32)  # mostly valid
known_mode = st.integers(0, 3)


@st.composite
def fusion_options(draw: st.DrawFn) -> pb.FusionOptions:
    known = st.integers(0, 3)
    options = pb.FusionOptions(
        method=draw(st.one_of(known, known, enum_value)),
        normalization=draw(st.one_of(known, known, enum_value)),
    )
    for name in ("alpha", "rrf_sparse_weight", "rrf_dense_weight"):
        if draw(st.booleans()):
            setattr(options, name, draw(st.one_of(st.floats(0, 1), any_float)))
    for name in ("rrf_k", "sparse_depth", "dense_depth"):
        if draw(st.booleans()):
            in_range = st.integers(1, 1000)
            value = st.one_of(in_range, in_range, st.integers(0, 1001), UINT32)
            setattr(options, name, draw(value))
    return options


@st.composite
def search_requests(draw: st.DrawFn) -> pb.SearchRequest:
    request = pb.SearchRequest(
        query=draw(queries),
        top_k=draw(top_k),
        mode=draw(st.one_of(known_mode, known_mode, known_mode, enum_value)),
        explain=draw(st.booleans()),
        return_fields=draw(st.lists(st.one_of(*[st.integers(1, 3)] * 4, enum_value), max_size=3)),
    )
    if draw(st.integers(0, 2)) == 0:
        request.fusion.CopyFrom(draw(fusion_options()))
    return request


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


invalid_utf8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])


@st.composite
def junk_messages(draw: st.DrawFn) -> bytes:
    """Bytes that are not a valid request: random, truncated, or with invalid UTF-8."""
    kind = draw(st.sampled_from(["random", "truncated", "bad-utf8", "deep"]))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "truncated":
        valid = draw(search_requests()).SerializeToString()
        return valid[: draw(st.integers(0, len(valid)))] + draw(st.binary(max_size=3))
    if kind == "bad-utf8":
        text = draw(st.binary(max_size=10)) + draw(invalid_utf8) + draw(st.binary(max_size=10))
        return b"\x0a" + _varint(len(text)) + text  # field 1 (query), length-delimited
    depth = draw(st.integers(50, 5000))  # fusion (field 4) nested in itself: past the limit
    message = b""
    for _ in range(depth):
        message = b"\x22" + _varint(len(message)) + message
    return message


def _status(number: int) -> grpc.StatusCode:
    return next(c for c in grpc.StatusCode if c.value[0] == number)


EXTREMES: dict[str, list[Any]] = {
    "top_k": [0, 1, 10, 1000, 1001, 2**31, 2**32 - 1],
    "mode": [0, 1, 2, 3, 4, -1, 2**31 - 1, -(2**31)],
    "fusion.alpha": [math.nan, math.inf, -math.inf, -0.0, 0.0, 1.0, 1e308, 5e-324, 1 + 1e-16],
    "fusion.rrf_k": [0, 1, 60, 10_000, 10_001, 2**32 - 1],
    "fusion.sparse_depth": [0, 1, 1000, 1001, 2**32 - 1],
    "fusion.method": [0, 1, 2, 3, -7, 2**31 - 1],
}


def expand(base: list[pb.SearchRequest], seed: int, count: int) -> list[pb.SearchRequest]:
    """``count`` requests bred from hypothesis-drawn ones: crossover of their fields plus
    mutation to extreme values (drawing every request through hypothesis is ~10x slower)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        request = pb.SearchRequest()
        request.CopyFrom(rng.choice(base))
        donor = rng.choice(base)
        field = rng.choice(["query", "top_k", "mode", "fusion", "return_fields", "explain"])
        if field == "fusion":
            request.fusion.CopyFrom(donor.fusion)
        elif field == "return_fields":
            request.return_fields[:] = donor.return_fields
        else:
            setattr(request, field, getattr(donor, field))
        if rng.random() < 0.2:
            name, values = rng.choice(list(EXTREMES.items()))
            target = request.fusion if name.startswith("fusion.") else request
            setattr(target, name.removeprefix("fusion."), rng.choice(values))
        elif rng.random() < 0.6:
            make_valid(request, rng)  # hostile text that gets past validation reaches the engine
        out.append(request)
    return out


def make_valid(request: pb.SearchRequest, rng: random.Random) -> None:
    """Clamp every field into its valid range, keeping the (possibly hostile) query text.

    Three in four become SPARSE; the others keep their mode with at most 500 characters, which
    bounds the encoder's share of the test's time.
    """
    if rng.random() < 0.75:
        request.mode = pb.RETRIEVAL_MODE_SPARSE
        request.query = request.query[:4000]
    else:
        request.mode %= 4
        request.query = request.query[:500]
    if not request.query.strip():
        request.query = "flow " + request.query
    request.top_k %= 21
    request.return_fields[:] = [f for f in request.return_fields if 1 <= f <= 3]
    request.ClearField("fusion")


class Fuzzer:
    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = search_pb2_grpc.SearchServiceStub(channel)
        self.raw = {
            name: channel.unary_unary(name) for name in (SEARCH, BATCH)
        }  # no serializers: bytes go out as they are
        self.raw_stream = channel.stream_stream(STREAM)
        self.codes: Counter[str] = Counter()
        self.search_requests = 0

    def check(self, kind: str, code: grpc.StatusCode) -> None:
        self.codes[f"{kind} {code.name}"] += 1
        assert code in ALLOWED, f"{kind} answered {code.name}"

    def searches(self, requests: list[pb.SearchRequest]) -> None:
        calls = [self.stub.Search.future(r, timeout=120) for r in requests]
        for request, call in zip(requests, calls, strict=True):
            code = call.code()
            self.check("Search", code)
            if code == grpc.StatusCode.OK:
                assert len(call.result().hits) <= max(request.top_k, 10)
                assert all(math.isfinite(h.score) for h in call.result().hits)
        self.search_requests += len(requests)

    def batch(self, requests: list[pb.SearchRequest]) -> None:
        try:
            response = self.stub.BatchSearch(pb.BatchSearchRequest(requests=requests), timeout=120)
            assert len(response.responses) == len(requests)
            self.check("BatchSearch", grpc.StatusCode.OK)
        except grpc.RpcError as error:
            self.check("BatchSearch", error.code())

    def stream(self, requests: list[pb.SearchRequest]) -> None:
        items = [
            pb.SearchStreamRequest(request_id=str(i), search=r) for i, r in enumerate(requests)
        ]
        answers = list(self.stub.SearchStream(iter(items), timeout=120))
        assert sorted(a.request_id for a in answers) == sorted(i.request_id for i in items)
        for answer in answers:
            if answer.WhichOneof("result") == "error":
                self.check("SearchStream item", grpc.StatusCode(_code(answer.error.code)))

    def junk(self, messages: list[bytes]) -> None:
        """Junk must be refused as INVALID_ARGUMENT (random bytes can parse as a message with
        unknown fields only: then validation refuses it, or a stream answers per item)."""
        for i, message in enumerate(messages):
            kind = ("junk Search", "junk BatchSearch", "junk SearchStream")[i % 3]
            try:
                if i % 3 == 2:
                    # a valid message first: the stream fails part-way, at the junk
                    good = pb.SearchStreamRequest(
                        request_id="ok", search=pb.SearchRequest(query="x")
                    )
                    stream = iter([good.SerializeToString(), message])
                    for raw in self.raw_stream(stream, timeout=60):
                        answer = pb.SearchStreamResponse.FromString(raw)
                        if answer.WhichOneof("result") == "error":
                            assert _status(answer.error.code) == grpc.StatusCode.INVALID_ARGUMENT
                    self.codes[f"{kind} parsed, answered per item"] += 1
                else:
                    self.raw[SEARCH if i % 3 == 0 else BATCH](message, timeout=60)
                    self.codes[f"{kind} OK"] += 1  # random bytes that form a valid request
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (
                    f"{kind} {message[:40]!r}: {error.code().name} {error.details()}"
                )
                self.codes[f"{kind} INVALID_ARGUMENT"] += 1


def _code(number: int) -> tuple[int, str]:
    return next(c.value for c in grpc.StatusCode if c.value[0] == number)


@pytest.fixture(scope="module")
def channel(hybrid_server: InProcessServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(
        hybrid_server.address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    ) as channel:
        yield channel


def test_random_requests_never_get_internal_or_unknown(channel: grpc.Channel) -> None:
    fuzzer = Fuzzer(channel)

    @settings(
        max_examples=ROUNDS,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        base=st.lists(search_requests(), min_size=BASE_PER_ROUND, max_size=BASE_PER_ROUND),
        seed=st.integers(0, 2**32),
        extra=st.lists(search_requests(), min_size=1, max_size=8),
        junk=st.lists(junk_messages(), min_size=3, max_size=6),
    )
    def one_round(
        base: list[pb.SearchRequest], seed: int, extra: list[pb.SearchRequest], junk: list[bytes]
    ) -> None:
        fuzzer.searches(base + expand(base, seed, PER_ROUND - len(base)))
        fuzzer.batch(extra)
        fuzzer.stream(extra)
        fuzzer.junk(junk)

    one_round()
    print(dict(fuzzer.codes))
    assert fuzzer.search_requests >= MIN_SEARCH_REQUESTS
    assert fuzzer.codes["Search OK"] > 0 and fuzzer.codes["Search INVALID_ARGUMENT"] > 0
    for kind in ("junk Search", "junk BatchSearch", "junk SearchStream"):
        assert fuzzer.codes[f"{kind} INVALID_ARGUMENT"] >= ROUNDS // 4, kind
    # alive and serving afterwards
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    stub = search_pb2_grpc.SearchServiceStub(channel)
    assert stub.Search(pb.SearchRequest(query="boundary layer flow", top_k=3)).hits
