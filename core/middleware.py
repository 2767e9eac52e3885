"""Keeps the reply shape for errors that never reach an API view."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from core.envelope import API_PREFIXES, error_response
from core.exception_handlers import api_error_from_exception
from core.exceptions import ApiError, ErrorCode

#: Django's own error pages under the API prefixes, and what each becomes.
_PAGE_ERRORS = {
    400: (ErrorCode.INVALID_PARAMETER, "bad request"),
    403: (ErrorCode.UNAUTHORIZED, "forbidden"),
    404: (ErrorCode.NOT_FOUND, "no such endpoint"),
    405: (ErrorCode.INVALID_PARAMETER, "method not allowed"),
    413: (ErrorCode.AUDIO_TOO_LARGE, "request body is too large"),
    500: (ErrorCode.INTERNAL, "internal error"),
}


class VoiceprintEnvelopeMiddleware:
    """Under the API prefixes, an error page Django made itself (an unknown URL, a refused
    Host header, an exception raised outside a view) becomes the surface's reply shape,
    never an HTML page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIXES)
            and response.status_code in _PAGE_ERRORS
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "streaming", False)
        ):
            return error_response(ApiError(*_PAGE_ERRORS[response.status_code]), request.path)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIXES):
            return None
        return error_response(api_error_from_exception(exception), request.path)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an exception that escaped every middleware still answers in the API's
    shape under its prefixes (Django's plain page elsewhere)."""
    if request.path.startswith(API_PREFIXES):
        return error_response(ApiError(*_PAGE_ERRORS[500]), request.path)
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400 (a refused Host header, a suspicious request), in the API's shape."""
    if request.path.startswith(API_PREFIXES):
        return error_response(ApiError(*_PAGE_ERRORS[400]), request.path)
    return defaults.bad_request(request, exception)
