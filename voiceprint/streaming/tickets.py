"""Stream tickets: how the console's live microphone authenticates a stream.

A browser cannot set headers on a WebSocket and the console has no API token to give it, so
the console page gets a ticket: the tenant, the one device it may stream for and the console
user, signed with the project's secret key and good for `TICKET_MAX_AGE` seconds. The stream
takes it in place of a token in its start message (docs/STREAMING.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from core.exceptions import ApiError, ErrorCode

SALT = "voiceprint.streaming.ticket"
#: Seconds a ticket may wait before its stream starts (the stream itself may last longer).
TICKET_MAX_AGE = 120


@dataclass(frozen=True)
class Ticket:
    tenant_id: int
    #: The device the ticket may stream for (its device_id).
    device_id: str
    #: The audit actor of the stream's identifications, e.g. "console:alice".
    actor: str


def stream_ticket_issue(*, tenant_id: int, device_id: str, actor: str) -> str:
    return signing.dumps({"tenant": tenant_id, "device": device_id, "actor": actor}, salt=SALT)


def stream_ticket_read(ticket: str) -> Ticket:
    """The ticket's content; 40100 when it is forged or older than TICKET_MAX_AGE."""
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
    )
