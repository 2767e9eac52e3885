"""The actor of each request: a console user by their session; an API request starts as
"system" until the token authentication names its token (core.authentication)."""

from __future__ import annotations

from audit.context import SYSTEM, acting_as, console_actor


class AuditActorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        actor = console_actor(user.get_username()) if user and user.is_authenticated else SYSTEM
        with acting_as(actor):
            return self.get_response(request)
