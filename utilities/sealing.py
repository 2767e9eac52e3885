"""Authenticated encryption of stored blobs (enrollment audio) under rotating keys.

A sealed blob is a 9-byte header, then a 12-byte random nonce, then AES-256-GCM's
ciphertext and tag:

    b"VPAE" | version (1 byte, 1) | key id (4 bytes) | nonce (12) | ciphertext + tag (16)

The header is authenticated too (GCM's associated data), so neither the version nor the
key id can be changed unnoticed. The key id is the start of a hash of the key: it picks
the key among those held without trying them all, and says which key is missing when none
matches, without revealing the key.

A `Keyring` holds the keys from configuration, each 32 random bytes written in base64:
the first seals, all of them open. Rotation is therefore: put a new key first, keep the
old ones after it until everything is re-sealed, then drop them.

Nothing here imports Django; callers build the keyring from their settings. No message
of this module ever contains key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_BYTES",
    "MAGIC",
    "Keyring",
    "KeyringError",
    "SealError",
    "TamperedError",
    "UnknownKeyError",
    "key_id",
    "new_key",
    "sealed_key_id",
]

MAGIC = b"VPAE"
VERSION = 1
KEY_BYTES = 32
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_HEADER_BYTES = len(MAGIC) + 1 + _KEY_ID_BYTES
_TAG_BYTES = 16


class KeyringError(ValueError):
    """The configured keys cannot be used (the message names the variable, never a key)."""


class SealError(Exception):
    """A sealed blob cannot be opened; the message is safe to show a client."""


class UnknownKeyError(SealError):
    """The blob was sealed with a key the keyring does not hold."""


class TamperedError(SealError):
    """The blob is not a sealed blob, or fails authentication: altered or corrupt."""


def new_key() -> str:
    """A fresh random key, as configuration holds it (standard base64 of 32 bytes)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def key_id(key: bytes) -> bytes:
    """The 4-byte id written in the header of what `key` seals."""
    return hashlib.sha256(b"voiceprint sealing key id\0" + key).digest()[:_KEY_ID_BYTES]


def _decode_key(value: str, *, name: str, position: int) -> bytes:
    """A key from its base64 form (standard or URL-safe alphabet)."""
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{name}: key #{position} is not base64") from None
    if len(key) != KEY_BYTES:
        raise KeyringError(
            f"{name}: key #{position} must be {KEY_BYTES} bytes in base64, not {len(key)} bytes"
        )
    return key


@dataclass(frozen=True)
class Keyring:
    """Keys by id, in configuration order: the first one seals."""

    ciphers: dict[bytes, AESGCM]
    current: bytes

    @classmethod
    def from_config(cls, values: Iterable[str], *, name: str) -> Keyring:
        """The keyring of the base64 keys `values` (setting or variable `name`)."""
        keys = [_decode_key(v, name=name, position=i) for i, v in enumerate(values, 1)]
        if not keys:
            raise KeyringError(f"{name} holds no key")
        ciphers = {key_id(key): AESGCM(key) for key in keys}
        return cls(ciphers=ciphers, current=key_id(keys[0]))

    @property
    def current_id(self) -> str:
        """The current key's id, in hex (safe to print)."""
        return self.current.hex()

    def seal(self, data: bytes) -> bytes:
        """`data` encrypted and authenticated with the current key."""
        header = MAGIC + bytes([VERSION]) + self.current
        nonce = os.urandom(_NONCE_BYTES)
        return header + nonce + self.ciphers[self.current].encrypt(nonce, data, header)

    def open(self, blob: bytes) -> bytes:
        """The data `blob` seals; `SealError` when it cannot be opened with these keys."""
        sealed_with = sealed_key_id(blob)
        cipher = self.ciphers.get(sealed_with)
        if cipher is None:
            raise UnknownKeyError(
                f"sealed with key id {sealed_with.hex()}, which is not among the configured keys"
            )
        header = blob[:_HEADER_BYTES]
        nonce = blob[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES]
        try:
            return cipher.decrypt(nonce, blob[_HEADER_BYTES + _NONCE_BYTES :], header)
        except InvalidTag:
            raise TamperedError("failed authentication: altered or corrupt") from None

    def is_current(self, blob: bytes) -> bool:
        """Whether `blob` is sealed with the current key (its header says so)."""
        try:
            return sealed_key_id(blob) == self.current
        except SealError:
            return False


def sealed_key_id(blob: bytes) -> bytes:
    """The key id in `blob`'s header; `TamperedError` when it has no valid header."""
    if len(blob) < _HEADER_BYTES + _NONCE_BYTES + _TAG_BYTES or not blob.startswith(MAGIC):
        raise TamperedError("not a sealed blob (no header): altered or corrupt")
    if blob[len(MAGIC)] != VERSION:
        raise TamperedError(f"unknown sealing format version {blob[len(MAGIC)]}")
    return blob[len(MAGIC) + 1 : _HEADER_BYTES]
