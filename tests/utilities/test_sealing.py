"""utilities/sealing.py: AES-GCM sealing under a keyring, its header, and its refusals."""

from __future__ import annotations

import base64

import pytest

from utilities.sealing import (
    MAGIC,
    Keyring,
    KeyringError,
    TamperedError,
    UnknownKeyError,
    new_key,
    sealed_key_id,
)

DATA = bytes(range(256)) * 40
OLD, NEW = new_key(), new_key()


def keyring(*keys: str) -> Keyring:
    return Keyring.from_config(keys, name="VOICEPRINT_AUDIO_KEY")


def test_seal_and_open_round_trip_with_a_fresh_nonce_each_time():
    ring = keyring(OLD)
    first, second = ring.seal(DATA), ring.seal(DATA)
    assert first.startswith(MAGIC) and first != second
    assert ring.open(first) == ring.open(second) == DATA
    assert DATA[:64] not in first


def test_the_first_key_seals_and_every_key_opens():
    sealed_old = keyring(OLD).seal(DATA)
    ring = keyring(NEW, OLD)
    assert ring.open(sealed_old) == DATA
    assert not ring.is_current(sealed_old)
    assert ring.is_current(ring.seal(DATA))
    assert sealed_key_id(ring.seal(DATA)).hex() == ring.current_id


def test_a_missing_key_is_named_by_its_id_only():
    sealed_old = keyring(OLD).seal(DATA)
    with pytest.raises(UnknownKeyError) as caught:
        keyring(NEW).open(sealed_old)
    assert keyring(OLD).current_id in str(caught.value)
    assert OLD not in str(caught.value)


@pytest.mark.parametrize("where", [4, 10, 30, -1], ids=["version", "nonce", "body", "tag"])
def test_any_altered_byte_is_refused(where):
    ring = keyring(OLD)
    blob = bytearray(ring.seal(DATA))
    blob[where] ^= 0x01
    with pytest.raises(TamperedError):
        ring.open(bytes(blob))


def test_an_altered_key_id_is_refused():
    """Rewritten to another configured key's id, the header no longer authenticates."""
    ring = keyring(NEW, OLD)
    blob = keyring(OLD).seal(DATA)
    forged = blob[:5] + bytes.fromhex(ring.current_id) + blob[9:]
    with pytest.raises(TamperedError):
        ring.open(forged)


@pytest.mark.parametrize("blob", [b"", b"RIFF" + bytes(100), MAGIC + b"\x01short"])
def test_what_is_not_a_sealed_blob_is_refused(blob):
    with pytest.raises(TamperedError):
        keyring(OLD).open(blob)


@pytest.mark.parametrize(
    "keys, problem",
    [
        ((), "holds no key"),
        (("not base64!",), "key #1 is not base64"),
        ((OLD, base64.b64encode(b"short").decode()), "key #2 must be 32 bytes"),
    ],
)
def test_malformed_keys_are_reported_without_the_key(keys, problem):
    with pytest.raises(KeyringError, match=problem) as caught:
        keyring(*keys)
    assert str(caught.value).startswith("VOICEPRINT_AUDIO_KEY")
    assert OLD not in str(caught.value)


def test_url_safe_base64_is_accepted():
    raw = bytes([0xFB, 0xFF] * 16)
    standard = base64.b64encode(raw).decode()
    url_safe = base64.urlsafe_b64encode(raw).decode()
    assert standard != url_safe
    assert keyring(url_safe).open(keyring(standard).seal(DATA)) == DATA
