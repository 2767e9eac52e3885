"""The reply shapes of the two API surfaces, in one place, and their common base view.

- Voiceprint API (`/v1/voiceprint/`): always HTTP 200 with `{code, msg, data}`.
- Voice API (`/v1/voice/`): real HTTP statuses, failures as `{"error": {code, message}}`.

Both refuse NUL characters in path and query parameters before a view runs
(tenancy.input_guard).
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenancy.errors import ApiError, ErrorCode, api_error_from_exception
from tenancy.input_guard import check_request_parameters

VOICEPRINT_PREFIX = "/v1/voiceprint/"
VOICE_PREFIX = "/v1/voice/"


def ok(data: Any = None) -> Response:
    """A Voiceprint API success: HTTP 200, code 0, empty msg."""
    return Response({"code": ErrorCode.OK, "msg": "", "data": data})


def envelope_body(error: ApiError) -> dict:
    return {"code": int(error.code), "msg": error.message, "data": None}


def voice_error_body(error: ApiError) -> dict:
    return {"error": {"code": int(error.code), "message": error.message}}


def error_response(error: ApiError, path: str) -> JsonResponse:
    """A plain Django response for errors raised outside DRF views (unknown URL, middleware)."""
    if path.startswith(VOICE_PREFIX):
        return JsonResponse(voice_error_body(error), status=error.code.http_status)
    return JsonResponse(envelope_body(error), status=200, json_dumps_params={"ensure_ascii": False})


class CheckedAPIView(APIView):
    """What both surfaces check once authentication, permissions and throttling have passed."""

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        check_request_parameters(request, kwargs)


class VoiceprintAPIView(CheckedAPIView):
    """Base view of the Voiceprint API: errors become HTTP 200 envelopes."""

    # OPTIONS would answer DRF's view description instead of an envelope: refuse it (40000)
    # like any other method the view does not have.
    metadata_class = None

    def handle_exception(self, exc: Exception) -> Response:
        error = api_error_from_exception(exc)
        response = Response(envelope_body(error), status=200)
        response.exception = True
        return response


class VoiceAPIView(CheckedAPIView):
    """Base view of the Voice API: errors become `{"error": {...}}` with their HTTP status."""

    metadata_class = None  # as above: OPTIONS is a method these views do not have

    def handle_exception(self, exc: Exception) -> Response:
        error = api_error_from_exception(exc)
        response = Response(voice_error_body(error), status=error.code.http_status)
        if error.code == ErrorCode.UNAUTHORIZED:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        response.exception = True
        return response


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER, for views outside the two surfaces (none map to 500)."""
    error = api_error_from_exception(exc)
    return Response(voice_error_body(error), status=error.code.http_status)
