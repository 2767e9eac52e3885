"""The one mapping from exceptions to business codes.

Views and services raise `ApiError` (core.exceptions), or let the typed errors of DRF,
Django, the database, the engine and the URL fetcher through; `api_error_from_exception`
turns any of them into an `ApiError`, and the two API surfaces render it their own way
(core.envelope).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404
from rest_framework import exceptions as drf

import engine.errors as engine_errors
from core.exceptions import ApiError, ErrorCode
from utilities import url_fetch

logger = logging.getLogger(__name__)


def api_error_from_exception(exc: Exception) -> ApiError:
    """Map any exception to the ApiError the client sees. Unknown ones are logged with
    their trace here and answer 50000 without it."""
    if isinstance(exc, ApiError):
        return exc
    for exc_type, mapper in _MAPPERS:
        if isinstance(exc, exc_type):
            return mapper(exc)
    logger.error("unhandled exception", exc_info=exc)
    return ApiError(ErrorCode.INTERNAL, "internal error")


def _validation_message(detail, path: str = "") -> str:
    """The first problem of a DRF ValidationError, as `field: message`."""
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        name = field if field != "non_field_errors" else ""
        return _validation_message(value, f"{path}.{name}" if path and name else path or name)
    if isinstance(detail, list) and detail:
        first = next((item for item in detail if item), detail[0])
        return _validation_message(first, path)
    return f"{path}: {detail}" if path else str(detail)


def _coded(code: ErrorCode, describe: Callable[[Exception], str] = str):
    return lambda exc: ApiError(code, describe(exc))


def _drf_detail(exc: Exception) -> str:
    return str(exc.detail)


def _database_unavailable(exc: Exception) -> ApiError:
    logger.warning("database unavailable: %s", exc.__class__.__name__)
    return ApiError(ErrorCode.UNAVAILABLE, "database unavailable, try again shortly")


INVALID = ErrorCode.INVALID_PARAMETER
_MODEL_MISSING = "the speaker engine's model is not installed on the server (see its log)"


def _too_many_fields(exc: Exception) -> str:  # Django counts the query and the form together
    return f"request: more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} query or form fields"


def _too_many_files(exc: Exception) -> str:
    return f"request: more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files"


_MAPPERS: list[tuple[type[Exception], Callable[[Exception], ApiError]]] = [
    (drf.ValidationError, _coded(INVALID, lambda e: _validation_message(e.detail))),
    (drf.ParseError, _coded(INVALID, lambda e: f"malformed request body: {e.detail}")),
    (drf.UnsupportedMediaType, _coded(ErrorCode.INVALID_PARAMETER, _drf_detail)),
    (drf.NotAuthenticated, _coded(ErrorCode.UNAUTHORIZED, lambda e: "missing bearer token")),
    (drf.AuthenticationFailed, _coded(ErrorCode.UNAUTHORIZED, _drf_detail)),
    (drf.PermissionDenied, _coded(ErrorCode.UNAUTHORIZED, _drf_detail)),
    (PermissionDenied, _coded(ErrorCode.UNAUTHORIZED, lambda e: "permission denied")),
    (drf.NotFound, _coded(ErrorCode.NOT_FOUND, _drf_detail)),
    (Http404, _coded(ErrorCode.NOT_FOUND, lambda e: "not found")),
    (drf.MethodNotAllowed, _coded(ErrorCode.INVALID_PARAMETER, _drf_detail)),
    (drf.NotAcceptable, _coded(ErrorCode.INVALID_PARAMETER, _drf_detail)),
    (drf.Throttled, _coded(ErrorCode.RATE_LIMITED, _drf_detail)),
    (RequestDataTooBig, _coded(ErrorCode.AUDIO_TOO_LARGE, lambda e: "request body is too large")),
    (TooManyFieldsSent, _coded(INVALID, _too_many_fields)),
    (TooManyFilesSent, _coded(INVALID, _too_many_files)),
    (engine_errors.AudioDecodeError, _coded(ErrorCode.UNDECODABLE_AUDIO)),
    (engine_errors.InsufficientSpeechError, _coded(ErrorCode.TOO_LITTLE_SPEECH)),
    # Its message names server paths and download steps: those stay in the server's log.
    (engine_errors.ModelNotFoundError, _coded(ErrorCode.UNAVAILABLE, lambda e: _MODEL_MISSING)),
    (engine_errors.EngineUnavailableError, _coded(ErrorCode.UNAVAILABLE)),
    (url_fetch.UrlNotAllowedError, _coded(INVALID, lambda e: f"audio_url: {e.message}")),
    (url_fetch.UrlTooLargeError, _coded(ErrorCode.AUDIO_TOO_LARGE, lambda e: e.message)),
    (url_fetch.UrlFetchFailedError, _coded(ErrorCode.FETCH_FAILED, lambda e: e.message)),
    (engine_errors.UnknownEngineError, _coded(INVALID, lambda e: f"model: {e}")),
    # The database is down or restarting (its reason is logged, never shown).
    (DatabaseOperationalError, _database_unavailable),
    (DatabaseInterfaceError, _database_unavailable),
]
