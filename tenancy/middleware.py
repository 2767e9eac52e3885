"""Keeps the reply shape for errors that never reach an API view."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tenancy.envelope import VOICE_PREFIX, VOICEPRINT_PREFIX, error_response
from tenancy.errors import ApiError, ErrorCode, api_error_from_exception

_API_PREFIXES = (VOICEPRINT_PREFIX, VOICE_PREFIX)


class VoiceprintEnvelopeMiddleware:
    """Under the API prefixes, an unknown URL answers 40400 and an exception raised
    outside a view answers 50000, each in the surface's shape, never as an HTML page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(_API_PREFIXES)
            and response.status_code == 404
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "streaming", False)
        ):
            return error_response(ApiError(ErrorCode.NOT_FOUND, "no such endpoint"), request.path)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(_API_PREFIXES):
            return None
        return error_response(api_error_from_exception(exception), request.path)
