"""Request context: the request id, the access log line and the request metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from config import observability
from config.logs import NO_REQUEST_ID, new_request_id, request_id_var, sane_request_id
from core.authentication import TenantPrincipal

REQUEST_ID_HEADER = "X-Request-ID"
#: Routes polled by probes and scrapers: their access lines are DEBUG, not INFO.
QUIET_ROUTES = frozenset({"healthz", "metrics"})

access_logger = logging.getLogger("voiceprint.access")


class RequestContextMiddleware:
    """Outermost middleware. For every request:

    - takes a sane `X-Request-ID` from the client (<= 64 of [A-Za-z0-9._-]) or makes one,
      keeps it in `config.logs.request_id_var` for the log records made meanwhile, and
      returns it in the `X-Request-ID` response header;
    - observes the request latency by resolved route (never the raw path);
    - writes one access log line: method, route, status, business code, duration_ms,
      tenant_id, request_id. Never headers, bodies or query strings.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        request.request_id = request_id
        # Kept until the response is closed (request_finished), not just until this returns:
        # Django logs "Internal Server Error" after the middleware chain.
        request_id_var.set(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - started
        response[REQUEST_ID_HEADER] = request_id
        self._record(request, response, duration)
        return response

    def _record(self, request: HttpRequest, response: HttpResponse, duration: float) -> None:
        route = route_of(request)
        code = business_code(response)
        observability.observe_request(request.method, route, response.status_code, duration)
        if code:
            observability.count_business_error(route, code)
        fields = {
            "method": request.method,
            "route": route,
            "status": response.status_code,
            "code": code,
            "duration_ms": round(duration * 1000, 1),
            "tenant_id": tenant_id_of(request),
        }
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        access_logger.log(
            level,
            "%s %s %s %.1fms",
            fields["method"],
            route,
            fields["status"],
            fields["duration_ms"],
            extra=fields,
        )


def route_of(request: HttpRequest) -> str:
    """The URL pattern the request resolved to, e.g. `v1/voiceprint/voices/<str:voice_id>`."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return observability.UNMATCHED_ROUTE
    return match.route or match.view_name or observability.UNMATCHED_ROUTE


def business_code(response: HttpResponse) -> int | None:
    """The business code of an API reply (envelope `code` or Voice API `error.code`)."""
    data = getattr(response, "data", None)
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    code = error.get("code") if isinstance(error, dict) else data.get("code")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def tenant_id_of(request: HttpRequest) -> int | None:
    # DRF stores the authenticated principal on the HttpRequest. type(), not isinstance():
    # isinstance() would evaluate the lazy session user of other requests (a query).
    principal = request.__dict__.get("user")
    return principal.tenant.pk if issubclass(type(principal), TenantPrincipal) else None


@receiver(request_finished, dispatch_uid="config.middleware.forget_request_id")
def forget_request_id(**kwargs) -> None:
    """The request is over: later records of this thread belong to no request."""
    request_id_var.set(NO_REQUEST_ID)
