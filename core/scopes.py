"""Token scopes, enforced in one place: `TokenScopePermission`, a permission of both
surfaces' base views (core.envelope.CheckedAPIView).

- `admin`: everything of its tenant.
- `read`: GET only, over the whole tenant (a view that must stay admin-only, such as the
  token endpoints, sets `readable = False`).
- `device`: only what a view declares in `device_rules`, a mapping from the lower-case
  method to a `DeviceRule`; a method without a rule is refused. Each rule answers whether
  this request stays on the token's device; the few kinds of rule live beside the views
  that know where a request names its device (`device_in_path` here, the audio parameter
  and the voice binding in voiceprint.api.scopes).

A request outside its scope answers 40300 (HTTP 403 on the Voice API) before the view
runs, so it changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rest_framework import permissions
from rest_framework.request import Request

from core.authentication import TenantPrincipal
from core.exceptions import forbidden
from tenancy.models import TokenScope

#: (request, the token's device_id, the view's URL kwargs) -> whether the request stays
#: on that device. Must not write anything; may read the request's parameters.
DeviceRule = Callable[[Request, str, Mapping[str, str]], bool]


def device_in_path(request: Request, token_device: str, url: Mapping[str, str]) -> bool:
    """The device named in the URL (`devices/{device_id}`) is the token's."""
    return url.get("device_id") == token_device


class TokenScopePermission(permissions.BasePermission):
    """Refuses (40300) a request its token's scope does not cover."""

    def has_permission(self, request: Request, view) -> bool:
        principal = request.user
        if not isinstance(principal, TenantPrincipal):
            return False  # IsTenant, before this one, answers 40100
        if principal.scope == TokenScope.ADMIN:
            return True
        if principal.scope == TokenScope.READ:
            if request.method in permissions.SAFE_METHODS and getattr(view, "readable", True):
                return True
            raise forbidden("this token may only read (its scope is 'read')")
        if principal.scope == TokenScope.DEVICE:
            rule = getattr(view, "device_rules", {}).get(request.method.lower())
            if rule is not None and rule(request, principal.device_id, view.kwargs):
                return True
            raise forbidden(f"this token may only act on device {principal.device_id!r}")
        raise forbidden(f"unknown token scope {principal.scope!r}")


def device_action_check(principal: TenantPrincipal, *, device_id: str) -> None:
    """Refuse (40300) an action on `device_id` that this token could not take by POSTing to
    one of the device's endpoints (the WebSocket stream, which no view guards): an admin
    token may, a read token never, a device token on its own device."""
    if principal.scope == TokenScope.ADMIN:
        return
    if principal.scope == TokenScope.READ:
        raise forbidden("this token may only read (its scope is 'read')")
    if principal.scope == TokenScope.DEVICE and principal.device_id == device_id:
        return
    if principal.scope == TokenScope.DEVICE:
        raise forbidden(f"this token may only act on device {principal.device_id!r}")
    raise forbidden(f"unknown token scope {principal.scope!r}")
