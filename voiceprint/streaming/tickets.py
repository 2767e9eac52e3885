"""Stream tickets: how the console's live microphone authenticates a stream.

A browser cannot set headers on a WebSocket and the console has no API token to give it, so
the console page gets a ticket: the tenant, the one device it may stream for and the console
user, signed with the project's secret key and good for `TICKET_MAX_AGE` seconds. The stream
takes it in place of a token in its start message (docs/STREAMING.md).

A ticket opens one stream only: issuing it keeps its random nonce in the shared cache (Redis
in production, so every web process sees it), and the stream that presents it deletes the
nonce. Deleting is atomic and says whether the key was there, so of two streams presenting
the same ticket at once, in any processes, exactly one gets it. A ticket copied from the
page (a log, a proxy, a browser extension) is therefore worthless once its stream started.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core import signing
from django.core.cache import cache

from core.exceptions import ApiError, ErrorCode
from core.limits import CACHE_ERRORS

SALT = "voiceprint.streaming.ticket"
#: Seconds a ticket may wait before its stream starts (the stream itself may last longer).
TICKET_MAX_AGE = 120
#: The nonce outlives the signature a little: a ticket that is too old says "expired".
_NONCE_TTL = TICKET_MAX_AGE + 10


@dataclass(frozen=True)
class Ticket:
    tenant_id: int
    #: The device the ticket may stream for (its device_id).
    device_id: str
    #: The audit actor of the stream's identifications, e.g. "console:alice".
    actor: str
    #: What makes it single-use: the cache key its stream deletes.
    nonce: str


def stream_ticket_issue(*, tenant_id: int, device_id: str, actor: str) -> str:
    """A new ticket for one stream; 50300 when the cache that keeps it is unreachable."""
    nonce = secrets.token_urlsafe(16)
    with _cache_needed():
        cache.set(_nonce_key(nonce), 1, timeout=_NONCE_TTL)
    content = {"tenant": tenant_id, "device": device_id, "actor": actor, "nonce": nonce}
    return signing.dumps(content, salt=SALT)


def stream_ticket_read(ticket: str) -> Ticket:
    """The ticket's content, unused; 40100 when it is forged or older than TICKET_MAX_AGE."""
    try:
        content = signing.loads(ticket, salt=SALT, max_age=TICKET_MAX_AGE)
    except signing.SignatureExpired:
        raise ApiError(ErrorCode.UNAUTHORIZED, "the stream ticket has expired") from None
    except signing.BadSignature:
        raise ApiError(ErrorCode.UNAUTHORIZED, "invalid stream ticket") from None
    return Ticket(
        tenant_id=int(content["tenant"]),
        device_id=str(content["device"]),
        actor=str(content["actor"]),
        nonce=str(content.get("nonce", "")),
    )


def stream_ticket_redeem(ticket: str) -> Ticket:
    """The ticket's content, used up by this call (a stream presenting it): 40100 when it is
    forged, expired or already used; 50300 when the cache cannot say whether it was."""
    content = stream_ticket_read(ticket)
    with _cache_needed():
        # Atomic get-and-delete: one caller only ever deletes the key.
        first = bool(content.nonce) and cache.delete(_nonce_key(content.nonce))
    if not first:
        raise ApiError(ErrorCode.UNAUTHORIZED, "the stream ticket was already used")
    return content


def _nonce_key(nonce: str) -> str:
    return f"stream:ticket:{nonce}"


@contextmanager
def _cache_needed() -> Iterator[None]:
    """Cache calls a ticket cannot do without: unreachable, 50300 rather than tickets that
    could be used again."""
    try:
        yield
    except CACHE_ERRORS as exc:
        message = "the cache that keeps stream tickets is unreachable"
        raise ApiError(ErrorCode.UNAVAILABLE, message) from exc
