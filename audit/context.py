"""Who is acting in this request or command, for the audit log: set once where the actor
is known (the API's token authentication, the console's session, a management command),
read by audit.services.audit_record. "system" when nobody set it (a Celery task, a shell)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

SYSTEM = "system"

actor_var: ContextVar[str] = ContextVar("audit_actor", default=SYSTEM)


def token_actor(prefix: str) -> str:
    """An API token, by its public prefix (never the secret)."""
    return f"token:{prefix}"


def console_actor(username: str) -> str:
    return f"console:{username}"


def command_actor(name: str) -> str:
    return f"command:{name}"


def set_actor(actor: str) -> None:
    actor_var.set(actor)


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """`actor` for the block (a request, a command), the previous one after it."""
    reset = actor_var.set(actor)
    try:
        yield
    finally:
        actor_var.reset(reset)


def current_actor() -> str:
    return actor_var.get()
