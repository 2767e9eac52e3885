"""The reply shapes of the two API surfaces, in one place, and their common base view.

- Voiceprint API (`/v1/voiceprint/`): always HTTP 200 with `{code, msg, data}`.
- Voice API (`/v1/voice/`): real HTTP statuses, failures as `{"error": {code, message}}`.

Both refuse NUL characters in path and query parameters before a view runs
(core.input_guard).
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.authentication import IsTenant
from core.exception_handlers import api_error_from_exception
from core.exceptions import ApiError, ErrorCode
from core.input_guard import check_request_parameters
from core.scopes import DeviceRule, TokenScopePermission

VOICEPRINT_PREFIX = "/v1/voiceprint/"
VOICE_PREFIX = "/v1/voice/"
#: Every path under these answers in its surface's reply shape, whatever goes wrong.
API_PREFIXES = (VOICEPRINT_PREFIX, VOICE_PREFIX)


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
    """What both surfaces check once authentication, permissions and throttling have passed.

    Permissions: a tenant's token (40100 without one), within its scope (40300 outside;
    core.scopes). A view declares what its scopes need: `device_rules` (what a device
    token may call, and how its device is found), `readable` (False: GET is admin-only).
    """

    permission_classes = [IsTenant, TokenScopePermission]
    #: Methods a device token may call, each with the rule that keeps it on its device.
    device_rules: dict[str, DeviceRule] = {}
    #: Whether a read token may GET this view.
    readable = True

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        check_request_parameters(request, kwargs)


class VoiceprintAPIView(CheckedAPIView):
    """Base view of the Voiceprint API: errors become HTTP 200 envelopes."""

    # OPTIONS would answer DRF's view description instead of an envelope: refuse it (40000)
    # like any other method the view does not have.
    metadata_class = None

    def get_exception_handler(self):
        return voiceprint_exception_handler


class VoiceAPIView(CheckedAPIView):
    """Base view of the Voice API: errors become `{"error": {...}}` with their HTTP status."""

    metadata_class = None  # as above: OPTIONS is a method these views do not have

    def get_exception_handler(self):
        return voice_exception_handler


def voiceprint_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF exception handler of the Voiceprint API: an HTTP 200 envelope, with DRF's
    headers (`Retry-After` on 42900, `WWW-Authenticate` on 40100)."""
    error = api_error_from_exception(exc)
    return Response(envelope_body(error), status=200, headers=_drf_headers(exc))


def voice_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF exception handler of the Voice API (and of views outside both surfaces)."""
    error = api_error_from_exception(exc)
    headers = _drf_headers(exc)
    if error.code == ErrorCode.UNAUTHORIZED:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="api"')
    return Response(voice_error_body(error), status=error.code.http_status, headers=headers)


#: settings.REST_FRAMEWORK["EXCEPTION_HANDLER"], for views outside the two surfaces.
exception_handler = voice_exception_handler


def _drf_headers(exc: Exception) -> dict[str, str]:
    """The headers DRF's own exception handler sends: APIView.handle_exception puts the
    authentication challenge on the exception, and a throttle its wait."""
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, round(exc.wait)))
    return headers
