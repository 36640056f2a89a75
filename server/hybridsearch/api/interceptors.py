"""The server's one interceptor: what five layers did, in one wrapper per method.

Per call, outermost first:

1. observability  request id, access log, metrics — sees every outcome, refusals included
2. auth           bearer tokens (only when tokens are configured)
3. admission      in-flight bound → RESOURCE_EXHAUSTED (SearchStream, UpsertDocuments: per
                  request or message, see `api.admission`)
4. error mapping  domain exceptions → canonical status codes, and an answer over
                  ``--max-message-bytes`` → RESOURCE_EXHAUSTED (see `api.response_size`)
5. decoding       parses requests inside the call, so junk is INVALID_ARGUMENT (needs 4)

Each method's wrapped handler is built once and reused (grpc hands the interceptor the same
registered handler for a method every time), and one flat coroutine per call does all five:
five interceptors cost five `intercept_service` coroutines, four rebuilt handlers and four
nested wrappers per call. Refusals (auth, a full server at routing) still answer without
decoding the request, as their own handlers.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from hybridsearch.api.admission import ADMITTED_PER_REQUEST, Admission
from hybridsearch.api.auth import TokenSet, auth_refusal
from hybridsearch.api.decoding import request_decoder
from hybridsearch.api.errors import abort_with
from hybridsearch.api.handlers import (
    OWN_SERVICE_PREFIX,
    UNKNOWN_METHOD,
    Context,
    StreamBehavior,
    UnaryBehavior,
    is_own_method,
    is_served_method,
    rejecting,
    rewrap,
    writing,
)
from hybridsearch.api.metrics import ServerMetrics
from hybridsearch.api.observability import CallRecord, CallsCut, observed_stream, observed_unary
from hybridsearch.api.response_size import check_size
from hybridsearch.config import ServerSettings

if TYPE_CHECKING:  # grpc's handler type is generic for the type checker only
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]


class ServingInterceptor(grpc.aio.ServerInterceptor):
    """Observability, auth, admission, error mapping and deferred decoding, in one."""

    def __init__(
        self,
        metrics: ServerMetrics | None,
        tokens: TokenSet,
        admission: Admission,
        *,
        max_response_bytes: int,
        echo_request_id: bool = False,
        protect_health: bool = False,
        calls_cut: CallsCut | None = None,
    ) -> None:
        """``max_response_bytes``: the largest answer grpc sends (``--max-message-bytes``).
        ``calls_cut``: whether the graceful stop's grace period has ended (grpc then cancels
        the calls still running: their clients see UNAVAILABLE)."""
        self._metrics = metrics
        self._tokens = tokens
        self._admission = admission
        self._echo = echo_request_id
        self._protect_health = protect_health
        self._max_response_bytes = max_response_bytes
        self._calls_cut = calls_cut
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler: Handler | None = await continuation(handler_call_details)
        method: str = handler_call_details.method
        own = is_own_method(method)
        # Unknown hybridsearch methods are checked too (see `auth_refusal`). Their names are
        # the caller's alone: logged and counted under one name, so that no caller can mint
        # metric series or log lines of any size.
        shown = method if handler is not None else UNKNOWN_METHOD
        if self._tokens.enabled and (own or self._protect_health):
            refusal = auth_refusal(self._tokens, method, handler_call_details.invocation_metadata)
            if refusal is not None:
                refused = rejecting(handler, refusal)
                return self._observed_only(refused, shown) if own else refused
        if handler is None or not is_served_method(method):
            return handler  # None: grpc answers UNIMPLEMENTED
        counted = own and method not in ADMITTED_PER_REQUEST
        if counted and self._admission.full():
            return self._observed_only(rejecting(handler, self._admission.refuse), method)
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = (handler, self._wrap(handler, method, own))
            self._wrapped[method] = cached
        return cached[1]

    def _record(self, method: str, context: Context) -> CallRecord:
        return CallRecord(
            method.removeprefix(OWN_SERVICE_PREFIX),
            context.invocation_metadata(),
            self._metrics,
            self._calls_cut,
        )

    def _observed_only(self, handler: Handler, method: str) -> Handler:
        """A refusal's handler, with its access log line and metrics."""
        echo = self._echo

        def record_of(context: Context) -> CallRecord:
            return self._record(method, context)

        return rewrap(
            handler,
            lambda behavior: observed_unary(behavior, record_of, echo),
            lambda behavior: observed_stream(behavior, record_of, echo),
            request_deserializer=None,
        )

    def _wrap(self, handler: Handler, method: str, own: bool) -> Handler:
        """``handler`` with all five layers (the first and third for hybridsearch's only;
        the third counts the methods of `ADMITTED_PER_REQUEST` per request, in the servicer)."""
        decode = request_decoder(handler)
        admission, echo, record = self._admission, self._echo, self._record
        limit = self._max_response_bytes
        counted = own and method not in ADMITTED_PER_REQUEST

        def wrap_unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def served(raw: Any, context: Context) -> Any:
                call = record(method, context) if own else None
                try:
                    if call is not None:
                        await call.begin(context, echo=echo)
                    if counted:
                        if admission.full():  # checked again: the call may have waited
                            await admission.refuse(context)
                        admission.in_flight += 1
                    try:
                        try:
                            response = await behavior(decode(raw), context)
                            check_size(response, limit, method)
                        except grpc.aio.AbortError:
                            raise
                        except Exception as exc:  # every other error becomes a status
                            await abort_with(context, exc)
                    finally:
                        if counted:
                            admission.in_flight -= 1
                    if call is not None:
                        call.observe(response)
                    return response
                except BaseException as exc:
                    if call is not None:
                        call.failed(exc, context)
                    raise
                finally:
                    if call is not None:
                        call.end()

            return served

        def wrap_stream(behavior: StreamBehavior) -> UnaryBehavior:
            async def served(raw: Any, context: Context) -> AsyncGenerator[Any, None]:
                call = record(method, context) if own else None
                try:
                    if call is not None:
                        await call.begin(context, echo=echo)
                    if counted:
                        if admission.full():
                            await admission.refuse(context)
                        admission.in_flight += 1
                    try:
                        try:
                            async for response in behavior(decode(raw), context):
                                check_size(response, limit, method)
                                if call is not None:
                                    call.observe(response)
                                yield response
                        except grpc.aio.AbortError:
                            raise
                        except Exception as exc:
                            await abort_with(context, exc)
                    finally:
                        if counted:
                            admission.in_flight -= 1
                except BaseException as exc:
                    if call is not None:
                        call.failed(exc, context)
                    raise
                finally:
                    if call is not None:
                        call.end()

            return writing(served)  # it writes its responses itself: see `writing`

        return rewrap(handler, wrap_unary, wrap_stream, request_deserializer=None)


def build_interceptors(
    settings: ServerSettings,
    metrics: ServerMetrics | None,
    admission: Admission | None = None,
    tokens: TokenSet | None = None,
    calls_cut: CallsCut | None = None,
) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors for ``settings`` (one); ``admission`` (else a new one for
    ``--max-in-flight``) feeds the in-flight gauge. ``tokens``: those read at start-up (else
    read from the settings' token lists and files now). ``calls_cut``: see
    `ServingInterceptor`."""
    if tokens is None:
        tokens = TokenSet.from_settings(settings)
    if admission is None:
        admission = Admission(settings.max_in_flight)
    if metrics is not None:
        metrics.track_in_flight(lambda: admission.in_flight)
        metrics.track_stream_refusals(lambda: admission.stream_requests_refused)
    return [
        ServingInterceptor(
            metrics,
            tokens,
            admission,
            echo_request_id=settings.echo_request_id,
            protect_health=settings.auth_health,
            max_response_bytes=settings.max_message_bytes,
            calls_cut=calls_cut,
        )
    ]
