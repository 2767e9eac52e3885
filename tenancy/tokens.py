"""Bearer token format, generation and verification."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_SCHEME = "vp"
PREFIX_LENGTH = 8


@dataclass(frozen=True)
class IssuedToken:
    """A freshly made token: `plaintext` is shown once and never stored."""

    plaintext: str
    prefix: str
    digest: str


def digest_token(plaintext: str) -> str:
    # Tokens carry 256 random bits, so a fast unsalted hash is safe (no dictionary to try).
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_token() -> IssuedToken:
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    plaintext = f"{TOKEN_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    return IssuedToken(plaintext=plaintext, prefix=prefix, digest=digest_token(plaintext))


def parse_prefix(plaintext: str) -> str | None:
    """The lookup prefix of a well-formed token, else None."""
    scheme, _, rest = plaintext.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != TOKEN_SCHEME or len(prefix) != PREFIX_LENGTH or not secret:
        return None
    return prefix


def digests_match(plaintext: str, digest: str) -> bool:
    return hmac.compare_digest(digest_token(plaintext), digest)
