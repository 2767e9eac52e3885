"""Reads: API tokens."""

from __future__ import annotations

from tenancy.models import ApiToken
from tenancy.tokens import digests_match, parse_prefix


def token_find_active(*, plaintext: str) -> ApiToken | None:
    """The active token with this plaintext (of an active tenant), compared in constant
    time, else None."""
    prefix = parse_prefix(plaintext)
    if prefix is None:
        return None
    candidates = ApiToken.objects.select_related("tenant").filter(
        prefix=prefix, revoked_at__isnull=True, tenant__is_active=True
    )
    for token in candidates:
        if digests_match(plaintext, token.digest):
            return token
    return None
