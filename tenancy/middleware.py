"""Keeps the reply shape for errors that never reach an API view."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tenancy.envelope import VOICE_PREFIX, VOICEPRINT_PREFIX, error_response
from tenancy.errors import ApiError, ErrorCode, api_error_from_exception

_API_PREFIXES = (VOICEPRINT_PREFIX, VOICE_PREFIX)

#: Django's own error pages, by status, as the error the API answers instead: an unknown
#: URL, and a request Django refuses before any view (a Host header it does not serve).
_PAGE_ERRORS = {
    400: ApiError(ErrorCode.INVALID_PARAMETER, "bad request (e.g. an invalid Host header)"),
    404: ApiError(ErrorCode.NOT_FOUND, "no such endpoint"),
}


class VoiceprintEnvelopeMiddleware:
    """Under the API prefixes, an unknown URL answers 40400, a request refused before any
    view 40000, and an exception raised outside a view 50000, each in the surface's shape,
    never as an HTML page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        error = _PAGE_ERRORS.get(response.status_code)
        if (
            error is not None
            and request.path.startswith(_API_PREFIXES)
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "streaming", False)
        ):
            return error_response(error, request.path)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(_API_PREFIXES):
            return None
        return error_response(api_error_from_exception(exception), request.path)
