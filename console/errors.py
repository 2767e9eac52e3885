"""Service errors, worded for a console page."""

from __future__ import annotations

import engine
from core.exception_handlers import api_error_from_exception
from core.exceptions import ApiError

#: What the services raise for a problem the user can act on (bad audio, full device, ...).
SERVICE_ERRORS = (ApiError, engine.EngineError)


def describe(exc: Exception) -> str:
    """The message the API would give, with its business code, e.g.
    "audio has too little speech ... (code 40003)"."""
    error = api_error_from_exception(exc)
    return f"{error.message} (code {int(error.code)})"
