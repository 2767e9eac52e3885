"""Refuses input no client sends in good faith, before a serializer or the database sees it.

- NUL characters in a path parameter, a query parameter or any field of a body: PostgreSQL
  text cannot hold them, so they would fail deep in a query (a 50000 with a trace, and the
  statement's parameters in the database's log). They answer 40000 naming the field.
- JSON nested deeper than :data:`MAX_JSON_DEPTH`: no request of either API nests more than
  a few levels, and deep nesting exhausts the recursion of Python's JSON decoder.

The two base views (core.envelope) check path and query; the parsers below check bodies,
and voiceprint.audio_input the `X-` headers of raw-body requests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.utils import json

from core.exceptions import ApiError, invalid

#: Deepest JSON accepted; the deepest request body of either API nests 3 levels.
MAX_JSON_DEPTH = 32

NUL = "\x00"
_JSON_NUL = "\\u0000"
# JSON depth is measured on a skeleton of the body: openers as "(", closers as ")", string
# delimiters kept, everything else dropped.
_SKELETON = bytes.maketrans(b"[{]}", b"(())")
_NOT_SKELETON = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_QUOTED = re.compile(rb'"[^"]*"')


def nul_refused(field: str) -> ApiError:
    return invalid(field, "must not contain NUL characters")


def check_parameters(named: Iterable[tuple[str, Any]]) -> None:
    """Refuse (40000) the first parameter whose name or text value holds a NUL."""
    for name, value in named:
        if NUL in name:
            raise invalid("request", "parameter names must not contain NUL characters")
        if isinstance(value, str) and NUL in value:
            raise nul_refused(name)


def check_request_parameters(request: Request, path_kwargs: Mapping[str, Any]) -> None:
    """The path parameters and the query string of an API request."""
    check_parameters(path_kwargs.items())
    check_parameters(
        (key, value) for key, values in request.query_params.lists() for value in values
    )


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON body nests deeper than `limit`, found before decoding it.

    Only brackets outside strings count. Every pass removes the innermost pairs, so the
    brackets of JSON nested n deep are gone after n passes. Everything is a C-level bytes
    operation: a 30 MB body costs a few linear scans, less than decoding it.
    """
    # Escaped backslashes and quotes go first (pairs, left to right, as JSON reads them),
    # so that every quote left delimits a string.
    body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(_SKELETON, delete=_NOT_SKELETON)
    # Two adjacent quotes never change which brackets are inside a string: dropping them
    # removes the bracket-free strings at C speed; the few left go by regex.
    skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = _QUOTED.sub(b"", skeleton)
    too_deep = b"(" * (limit + 1)
    for _ in range(limit):
        if not skeleton:
            return False
        if too_deep in skeleton:
            return True
        shorter = skeleton.replace(b"()", b"")
        if len(shorter) == len(skeleton):  # unbalanced: the decoder says what is wrong
            return False
        skeleton = shorter
    return bool(skeleton)


def has_json_nul(text: str) -> bool:
    """Whether JSON text holds an escaped NUL ("\\u0000"; "\\\\u0000" is a backslash)."""
    return _JSON_NUL in text and _JSON_NUL in text.replace("\\\\", "")


def check_json_body(data: Any) -> None:
    """Refuse (40000) a decoded JSON body holding a NUL, naming its top-level field."""
    if not isinstance(data, dict):
        if has_json_nul(json.dumps(data, allow_nan=True)):
            raise nul_refused("body")
        return
    for name, value in data.items():
        if NUL in name:
            raise invalid("body", "field names must not contain NUL characters")
        if has_json_nul(json.dumps(value, allow_nan=True)):
            raise nul_refused(name)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing deep nesting (before decoding) and NUL characters."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except ValueError as exc:  # UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from None
        if json_depth_exceeds(text.encode("utf-8", "surrogatepass")):
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            parse_constant = json.strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:  # unbalanced brackets, which the depth check leaves to us
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        if has_json_nul(text):  # a scan of the text first: most bodies hold no NUL at all
            check_json_body(data)
        return data


def _check_form(data: QueryDict) -> None:
    check_parameters((key, value) for key, values in data.lists() for value in values)


class FormParser(parsers.FormParser):
    """DRF's form parser, refusing NUL characters in field names and values."""

    def parse(self, stream, media_type=None, parser_context=None) -> QueryDict:
        data = super().parse(stream, media_type, parser_context)
        _check_form(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, refusing NUL characters in field names and values."""

    def parse(self, stream, media_type=None, parser_context=None) -> parsers.DataAndFiles:
        parsed = super().parse(stream, media_type, parser_context)
        _check_form(parsed.data)
        return parsed


#: The body parsers of both APIs (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] names them too).
BODY_PARSERS = [JSONParser, FormParser, MultiPartParser]
