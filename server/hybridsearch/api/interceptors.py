"""The interceptor chain of the server, outermost first.

1. observability  request id, access log, metrics — sees every outcome, refusals included
2. auth           bearer tokens (only when tokens are configured)
3. admission      in-flight bound → RESOURCE_EXHAUSTED
4. error mapping  domain exceptions → canonical status codes
5. decoding       parses requests inside the call, so junk is INVALID_ARGUMENT (needs 4)
"""

from __future__ import annotations

import grpc

from hybridsearch.api.admission import AdmissionInterceptor
from hybridsearch.api.auth import AuthInterceptor, TokenSet
from hybridsearch.api.decoding import DeferredDecodingInterceptor
from hybridsearch.api.errors import ErrorMappingInterceptor
from hybridsearch.api.metrics import ServerMetrics
from hybridsearch.api.observability import ObservabilityInterceptor
from hybridsearch.config import ServerSettings


def build_interceptors(
    settings: ServerSettings, metrics: ServerMetrics | None
) -> list[grpc.aio.ServerInterceptor]:
    """The chain for ``settings``; the admission interceptor feeds the in-flight gauge."""
    admission = AdmissionInterceptor(settings.max_in_flight)
    if metrics is not None:
        metrics.track_in_flight(lambda: admission.in_flight)
    chain: list[grpc.aio.ServerInterceptor] = [
        ObservabilityInterceptor(metrics, echo_request_id=settings.echo_request_id)
    ]
    tokens = TokenSet.from_settings(settings)
    if tokens.enabled:
        chain.append(AuthInterceptor(tokens, protect_health=settings.auth_health))
    chain += [admission, ErrorMappingInterceptor(), DeferredDecodingInterceptor()]
    return chain
