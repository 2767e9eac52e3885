"""Prometheus metrics: every metric of the service is defined here, and served by GET /metrics.

Metrics (Prometheus text format 0.0.4):

- `voiceprint_http_request_duration_seconds{method, route, status}` histogram: `route` is
  the URL pattern the request resolved to (`v1/voiceprint/voices/<str:voice_id>`), never
  the raw path, which holds ids; `unmatched` when nothing resolved. `status` is the status
  class (`2xx` ... `5xx`).
- `voiceprint_http_business_errors_total{route, code}`: replies with a business code other
  than 0 (the Voiceprint API answers HTTP 200 even for errors; this is where they show).
- `voiceprint_embedding_duration_seconds{engine, mode}` histogram: time spent computing
  one embedding; `mode` is `in-process` or `celery` (measured in the worker, so it excludes
  the queue).
- `voiceprint_embedding_batch_size{engine, mode}` histogram: for each embedding, how many
  concurrent requests were embedded with it as one batch (engine.batching; 1 when it ran
  alone). Its mean is the batch size seen by a request, weighted by requests.
- `voiceprint_embedding_queue_wait_seconds` histogram: enqueue to the worker starting the
  job (celery mode only; host clocks are assumed in sync, negative waits count as 0).
- `voiceprint_identify_total{model, surface}` and `voiceprint_identify_matched_total{model,
  surface}`: 1:N identifications and those that matched; `surface` is `device`
  (POST /v1/voiceprint/voices/identify) or `store` (POST /v1/voice/identify).
- Streams (WS /v1/voiceprint/stream, docs/STREAMING.md): `voiceprint_streams_open` gauge
  (summed over live processes), `voiceprint_streams_closed_total{code}` (the close code,
  refusals before the stream opened included),
  `voiceprint_stream_events_total{type}` (events sent), `voiceprint_stream_partial_seconds`
  histogram (the compute time of one partial result: embedding, search, decision) and
  `voiceprint_stream_partials_dropped_total` (partials not sent to a client reading slowly).

Processes: by default each process has its own registry, so behind several gunicorn workers
each scrape sees one worker only. Set PROMETHEUS_MULTIPROC_DIR to an empty, writable
directory (wiped at every start) in the environment of all web processes and /metrics
aggregates them (prometheus-client's multiprocess mode).

/metrics needs no token unless VOICEPRINT_METRICS_TOKEN is set; then it wants
`Authorization: Bearer <that token>`.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from utilities.env import env_str

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"

REQUEST_LATENCY = Histogram(
    "voiceprint_http_request_duration_seconds",
    "HTTP request latency, by resolved URL route, method and status class.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BUSINESS_ERRORS = Counter(
    "voiceprint_http_business_errors",
    "API replies whose business code is not 0, by route and code.",
    ["route", "code"],
)
EMBEDDING_DURATION = Histogram(
    "voiceprint_embedding_duration_seconds",
    "Time to compute one speaker embedding, by engine and mode (in-process or celery).",
    ["engine", "mode"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
BATCH_SIZE = Histogram(
    "voiceprint_embedding_batch_size",
    "For each embedding, the size of the batch it was computed in, by engine and mode.",
    ["engine", "mode"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
)
QUEUE_WAIT = Histogram(
    "voiceprint_embedding_queue_wait_seconds",
    "Time from enqueueing an embedding job to a Celery worker starting it.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IDENTIFY = Counter(
    "voiceprint_identify",
    "1:N identifications, by engine model and surface (device or store).",
    ["model", "surface"],
)
IDENTIFY_MATCHED = Counter(
    "voiceprint_identify_matched",
    "1:N identifications that matched a voice, by engine model and surface.",
    ["model", "surface"],
)

STREAMS_OPEN = Gauge(
    "voiceprint_streams_open",
    "WebSocket identification streams open now.",
    multiprocess_mode="livesum",
)
STREAMS_CLOSED = Counter(
    "voiceprint_streams_closed", "Streams closed, by WebSocket close code.", ["code"]
)
STREAM_EVENTS = Counter(
    "voiceprint_stream_events", "Events sent on identification streams, by type.", ["type"]
)
STREAM_PARTIAL = Histogram(
    "voiceprint_stream_partial_seconds",
    "Compute time of one partial stream result (embedding, search and decision).",
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5),
)
STREAM_PARTIALS_DROPPED = Counter(
    "voiceprint_stream_partials_dropped",
    "Partial results not sent because the client read its events too slowly.",
)


def status_class(status_code: int) -> str:
    return f"{status_code // 100}xx"


def observe_request(method: str, route: str, status_code: int, seconds: float) -> None:
    method = method if method in KNOWN_METHODS else "other"
    REQUEST_LATENCY.labels(method, route, status_class(status_code)).observe(seconds)


def count_business_error(route: str, code: int) -> None:
    BUSINESS_ERRORS.labels(route, str(code)).inc()


def observe_embedding(engine: str, mode: str, seconds: float) -> None:
    EMBEDDING_DURATION.labels(engine, mode).observe(max(seconds, 0.0))


def observe_batch_size(engine: str, mode: str, size: int) -> None:
    BATCH_SIZE.labels(engine, mode).observe(size)


def observe_queue_wait(seconds: float) -> None:
    QUEUE_WAIT.observe(max(seconds, 0.0))


def count_identify(model: str, surface: str, matched: bool) -> None:
    IDENTIFY.labels(model, surface).inc()
    if matched:
        IDENTIFY_MATCHED.labels(model, surface).inc()


def stream_opened() -> None:
    STREAMS_OPEN.inc()


def stream_closed(code: int, *, opened: bool) -> None:
    """A stream closed with `code`: one that was opened (stream_opened), or one refused
    before it was (authentication, scope, the tenant's limit)."""
    if opened:
        STREAMS_OPEN.dec()
    STREAMS_CLOSED.labels(str(code)).inc()


def count_stream_event(kind: str) -> None:
    STREAM_EVENTS.labels(kind).inc()


def observe_stream_partial(seconds: float) -> None:
    STREAM_PARTIAL.observe(max(seconds, 0.0))


def count_stream_partial_dropped() -> None:
    STREAM_PARTIALS_DROPPED.inc()


def _registry() -> CollectorRegistry:
    if not env_str("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given_bytes, token_bytes = given.strip().encode(), token.encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(given_bytes, token_bytes)


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the Prometheus text exposition of this process (or of all processes
    sharing PROMETHEUS_MULTIPROC_DIR)."""
    token = settings.VOICEPRINT_METRICS_TOKEN
    if token and not _authorized(request, token):
        response = HttpResponse("missing or invalid metrics token\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)
