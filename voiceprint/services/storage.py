"""Enrollment audio as it is kept: encoded as 16 kHz mono 16-bit WAV, encrypted with the
current audio key (utilities/sealing.py, settings.VOICEPRINT_AUDIO_KEY), stored under the
tenant, opened (decrypted) for playback and re-embedding, re-encrypted when the key
rotates, and deleted with its voice or when the retention purges it (retention.py).

Encryption happens before the storage backend, so the filesystem and S3 hold the same
sealed bytes. Sealed files are named `*.wav.enc`; a name ending in `.wav` is audio stored
before encryption existed, read as it is until `rotate_audio_key` seals it under a new
name. The name, which lives in the database, decides how a file is read: replacing a
sealed file in storage with a plaintext WAV does not make it readable.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from functools import lru_cache

import numpy as np
import soundfile
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from core.exceptions import ApiError, ErrorCode
from engine.audio import SAMPLE_RATE
from tenancy.models import Tenant, new_public_id
from utilities.sealing import Keyring, KeyringError, SealError, UnknownKeyError
from voiceprint.models import VoiceSample

logger = logging.getLogger(__name__)

SEALED_SUFFIX = ".wav.enc"
KEY_SETTING = "VOICEPRINT_AUDIO_KEY"


class StoredAudioError(ApiError):
    """Stored audio that cannot be decrypted: 50300 while its key is not configured (add it
    back), 50000 when it fails authentication (altered or corrupt: never served). The
    message names the file and the variable, never key material."""

    def __init__(self, name: str, problem: SealError) -> None:
        file = name.rsplit("/", 1)[-1]
        if isinstance(problem, UnknownKeyError):
            code, message = ErrorCode.UNAVAILABLE, f"was {problem}: add that key to {KEY_SETTING}"
        else:
            code, message = ErrorCode.INTERNAL, f"{problem}: it is refused"
        super().__init__(code, f"the stored audio {file} {message}")


class PurgedAudioError(ApiError):
    """A sample whose recording the retention purged, or that was imported without one
    (40400): its embedding is kept, its audio is gone for good."""

    def __init__(self, sample: VoiceSample) -> None:
        if sample.imported:
            super().__init__(
                ErrorCode.NOT_FOUND, "sample has no audio: it was imported as an embedding"
            )
            return
        days = settings.VOICEPRINT_AUDIO_RETENTION_DAYS
        if days is None:  # the setting was turned off since: say how old the audio was
            days = (sample.audio_purged_at - sample.created_at).days
        super().__init__(
            ErrorCode.NOT_FOUND,
            f"sample audio was purged after {days} days (VOICEPRINT_AUDIO_RETENTION_DAYS)",
        )


def wav_encode(waveform: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A decoded waveform (engine.decode_audio's 16 kHz mono) as the WAV that is kept."""
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def audio_keyring() -> Keyring:
    """The keys of settings.VOICEPRINT_AUDIO_KEY. Malformed keys stop the start-up
    (core/checks.py); should they get past it, requests answer 50300, not a trace."""
    try:
        return _keyring(tuple(getattr(settings, KEY_SETTING)))
    except KeyringError as exc:
        logger.error("%s", exc)
        raise ApiError(
            ErrorCode.UNAVAILABLE, f"the server's {KEY_SETTING} is misconfigured (see its log)"
        ) from None


@lru_cache(maxsize=4)
def _keyring(values: tuple[str, ...]) -> Keyring:
    return Keyring.from_config(values, name=KEY_SETTING)


@contextmanager
def audio_store(tenant: Tenant | int, *, wav: bytes) -> Iterator[str]:
    """Store enrollment audio, encrypted, and yield its name; remove it again if the block
    that records it fails."""
    tenant_pk = tenant if isinstance(tenant, int) else tenant.pk
    sealed = audio_keyring().seal(wav)
    name = default_storage.save(
        f"voices/{tenant_pk}/{new_public_id()}{SEALED_SUFFIX}", ContentFile(sealed)
    )
    try:
        yield name
    except BaseException:
        audio_delete([name])
        raise


def audio_read(name: str) -> bytes:
    """The WAV stored as `name`, decrypted; `OSError` when it is missing from storage,
    `StoredAudioError` when it cannot be decrypted."""
    with default_storage.open(name, "rb") as stored:
        blob = stored.read()
    if not name.endswith(SEALED_SUFFIX):
        return blob  # `*.wav`: stored before encryption, read as it is
    try:
        return audio_keyring().open(blob)
    except SealError as exc:
        logger.warning("stored audio %s cannot be decrypted: %s", name, exc)
        raise StoredAudioError(name, exc) from None


def audio_open(name: str) -> File:
    """The stored audio `name` as WAV, decrypted, opened for reading (the caller closes
    it); raises like `audio_read`."""
    return ContentFile(audio_read(name), name=name.removesuffix(".enc").rsplit("/", 1)[-1])


def sample_audio_open(sample: VoiceSample) -> File:
    """`audio_open` of a sample's recording; `PurgedAudioError` (40400) once purged."""
    if sample.audio_purged_at is not None:
        raise PurgedAudioError(sample)
    return audio_open(sample.audio.name)


def audio_delete(names: Iterable[str]) -> None:
    """Delete stored audio; a file that cannot be deleted is logged, not raised. Empty
    names (samples whose audio was purged) are skipped."""
    for name in filter(None, names):
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete stored audio %s", name)


class Reseal(StrEnum):
    """What `voice_sample_audio_reseal` did with one sample's audio."""

    RESEALED = "re-encrypted"
    CURRENT = "already on the current key"
    GONE = "deleted meanwhile"
    PURGED = "purged (no audio left)"


def voice_sample_audio_reseal(*, sample_id: int) -> Reseal:
    """Re-encrypt a sample's audio with the current key (sealing audio stored before
    encryption too). The new file gets a new name, recorded only if the sample still
    points at the old one; the old file is deleted once that is committed. So a run cut
    short anywhere loses nothing, and running again skips what is done."""
    sample = VoiceSample.objects.filter(pk=sample_id).values("audio", "voice__tenant_id").first()
    if sample is None:
        return Reseal.GONE
    old = sample["audio"]
    if not old:
        return Reseal.PURGED
    if old.endswith(SEALED_SUFFIX) and _sealed_with_current_key(old):
        return Reseal.CURRENT
    wav = audio_read(old)
    try:
        with audio_store(sample["voice__tenant_id"], wav=wav) as new, transaction.atomic():
            if not VoiceSample.objects.filter(pk=sample_id, audio=old).update(audio=new):
                raise _SampleMoved
            transaction.on_commit(lambda: audio_delete([old]))
    except _SampleMoved:
        return Reseal.GONE  # or purged meanwhile: the new file was deleted again
    return Reseal.RESEALED


class _SampleMoved(Exception):
    """The sample was deleted or its audio replaced while it was being re-encrypted."""


def _sealed_with_current_key(name: str) -> bool:
    with default_storage.open(name, "rb") as stored:
        return audio_keyring().is_current(stored.read())
