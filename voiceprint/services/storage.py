"""Enrollment audio as it is kept: encoded as 16 kHz mono 16-bit WAV, stored under the
tenant, opened for playback and re-embedding, and deleted with its voice."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import soundfile
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from engine.audio import SAMPLE_RATE
from tenancy.models import Tenant, new_public_id

logger = logging.getLogger(__name__)


def wav_encode(waveform: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A decoded waveform (engine.decode_audio's 16 kHz mono) as the WAV that is kept."""
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@contextmanager
def audio_store(tenant: Tenant, *, wav: bytes) -> Iterator[str]:
    """Store enrollment audio and yield its name; remove it again if the block that
    records it fails."""
    name = default_storage.save(f"voices/{tenant.pk}/{new_public_id()}.wav", ContentFile(wav))
    try:
        yield name
    except BaseException:
        audio_delete([name])
        raise


def audio_open(name: str) -> File:
    """The stored audio `name`, opened for reading (the caller closes it)."""
    return default_storage.open(name, "rb")


def audio_delete(names: Iterable[str]) -> None:
    """Delete stored audio; a file that cannot be deleted is logged, not raised."""
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete stored audio %s", name)
