"""Logging: the request id of the current request, JSON lines, and a redaction safety net.

`settings.LOGGING` wires these up: `RequestIdFilter` on the console handler gives every
record a `request_id` (set by `config.middleware.RequestContextMiddleware`, "-" outside a
request), and the handler's formatter is `JsonFormatter` (one JSON object per line) or
`RedactingFormatter` (plain text), chosen by the LOG_FORMAT environment variable.

Both formatters mask what must never reach a log even when a caller slips: bearer tokens
(`vp_<prefix>_<secret>` keeps its public prefix only), long base64 runs and byte dumps
(audio) and long runs of numbers (embeddings, as Python, JSON or numpy print them). They
also drop the arguments and return values Celery attaches to its task records (the worker
logs through these formatters too: see config.celery). This module is imported while
settings are configured, so it depends on the standard library only.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime

NO_REQUEST_ID = "-"
REQUEST_ID_MAX_LENGTH = 64
_SANE_REQUEST_ID = re.compile(rf"^[A-Za-z0-9._-]{{1,{REQUEST_ID_MAX_LENGTH}}}$")

request_id_var: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST_ID)


def sane_request_id(value: str | None) -> str | None:
    """`value` when it is safe to echo and log (<= 64 of [A-Za-z0-9._-]), else None."""
    return value if value and _SANE_REQUEST_ID.match(value) else None


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record that passes the handler it is attached to."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


# --- redaction ---------------------------------------------------------------------------

REDACTED = "[REDACTED]"

_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    # Our API tokens: vp_<8 hex prefix>_<secret>. The prefix is public (it finds the row).
    (re.compile(r"\b(vp_[0-9a-f]{8}_)[A-Za-z0-9_\-]+"), rf"\1{REDACTED}"),
    # Any bearer credential, in a header dump or a message.
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"'\\,;]+"), rf"\1{REDACTED}"),
    # Audio as base64 (or any long opaque blob): 120+ characters of the base64 alphabet
    # (standard or URL-safe).
    (re.compile(r"[A-Za-z0-9+/_-]{120,}={0,2}"), "[REDACTED base64]"),
    # Audio as a Python bytes repr: 16 or more escapes (\xNN, \n, \', ...; the backslash
    # doubled inside JSON) with at most 4 other characters between them.
    (re.compile(r"(?:\\{1,2}(?:x[0-9a-fA-F]{2}|[nrt'\"\\])[^\\]{0,4}){16,}"),
     "[REDACTED bytes]"),
    # An embedding: 16 or more numbers in a row, separated by commas (Python, JSON) or by
    # blanks (numpy's str()).
    (re.compile(r"(?<![\w.])(?:[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?(?:\s*,\s*|\s+)){15,}"
                r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"),
     "[REDACTED numbers]"),
]  # fmt: skip


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


NOT_LOGGED = "[not logged]"
# Celery passes a task's arguments and return value to its records, as the mapping the
# message is formatted with and again as `extra={"data": ...}`: "Task ...[id] succeeded in
# 0.2s: <return value>". For our tasks those are audio keys and embeddings.
_CELERY_TASK_VALUES = frozenset({"args", "kwargs", "return_value"})


def _without_task_values(record: logging.LogRecord) -> None:
    """Replace Celery's task arguments and return value in `record` with NOT_LOGGED."""
    if not record.name.startswith("celery"):
        return
    if isinstance(record.args, Mapping) and _CELERY_TASK_VALUES & record.args.keys():
        record.args = _hide_task_values(record.args)
    data = getattr(record, "data", None)
    if isinstance(data, Mapping):
        record.data = _hide_task_values(data)


def _hide_task_values(values: Mapping) -> dict:
    return {
        key: NOT_LOGGED if key in _CELERY_TASK_VALUES else value for key, value in values.items()
    }


def _loggable(value: object) -> object:
    """An HTTP request (django.request passes one) as its method and path: its repr would
    add the query string, which a client may fill with anything."""
    method, path = getattr(value, "method", None), getattr(value, "path", None)
    if isinstance(method, str) and isinstance(path, str) and hasattr(value, "META"):
        return f"{method} {path}"
    return value


class RedactingFormatter(logging.Formatter):
    """`logging.Formatter`, with `redact` applied to the whole formatted line."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        _without_task_values(record)
        return redact(super().format(record))


# The attributes every LogRecord has; anything else was passed with `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
}


class JsonFormatter(RedactingFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id,
    the record's `extra=` fields, and `exc_info` / `stack_info` as text."""

    def format(self, record: logging.LogRecord) -> str:
        _without_task_values(record)
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = _loggable(value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))
