"""Business error codes (API.md) and the error that carries one. Depends on nothing.

Any layer raises `ApiError` (or its own typed errors, which `core.exception_handlers`
maps); only the core decides how a surface renders it.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    OK = 0
    INVALID_PARAMETER = 40000
    NO_AUDIO = 40001
    UNDECODABLE_AUDIO = 40002
    TOO_LITTLE_SPEECH = 40003
    UNAUTHORIZED = 40100
    FORBIDDEN = 40300
    NOT_FOUND = 40400
    CONFLICT = 40900
    AUDIO_TOO_LARGE = 41300
    RATE_LIMITED = 42900
    INTERNAL = 50000
    NOT_IMPLEMENTED = 50100
    FETCH_FAILED = 50200
    UNAVAILABLE = 50300

    @property
    def http_status(self) -> int:
        """The HTTP status the Voice API answers with (the Voiceprint API always uses 200)."""
        return _HTTP_STATUS[self]


_HTTP_STATUS = {
    ErrorCode.OK: 200,
    ErrorCode.INVALID_PARAMETER: 400,
    ErrorCode.NO_AUDIO: 400,
    ErrorCode.UNDECODABLE_AUDIO: 415,
    ErrorCode.TOO_LITTLE_SPEECH: 422,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.AUDIO_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.NOT_IMPLEMENTED: 501,
    ErrorCode.FETCH_FAILED: 502,
    ErrorCode.UNAVAILABLE: 503,
}


class ApiError(Exception):
    """An error with a business code and a message that is safe to show to the client."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(field: str, problem: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_PARAMETER, f"{field}: {problem}")


def forbidden(message: str) -> ApiError:
    return ApiError(ErrorCode.FORBIDDEN, message)


def not_found(what: str) -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, f"{what} not found")


def conflict(message: str) -> ApiError:
    return ApiError(ErrorCode.CONFLICT, message)
