"""Factories for tests, in one place, at the service level (no HTTP).

Rows are made through the services that make them in production (`tenant_create`,
`device_create`, `role_create`, `voice_create`), so a factory never builds a state the
product could not reach. Speech comes from the real recordings in ../shared/audio
(README there): a reader skips the calling test, saying why, when they are absent.
Every function that touches the database needs a test marked `pytest.mark.django_db`.
Import the module (`from tests import factories as make`): `make.tenant()` then never
clashes with the fixtures of the same name, and no reader is collected as a test.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile

from devices.models import Device
from devices.services import device_create
from roles.models import Role
from roles.services import role_create
from tenancy.models import Tenant
from tenancy.services import tenant_create
from tests.conftest import SHARED_AUDIO
from tests.engine.conftest import babble, mix_at_snr
from voiceprint.models import Voice
from voiceprint.services import voice_create, voice_sample_add

ZH = SHARED_AUDIO / "zh"
LIBRISPEECH = SHARED_AUDIO / "librispeech-train-clean-100"
#: The speakers of zh/enroll and zh/test (file name prefix).
ZH_SPEAKERS = ("fangjun", "leijun", "liudehua")
SAMPLE_RATE = 16_000
#: The LibriSpeech talkers of `with_babble`'s noise.
BABBLE_TALKERS = ("103-1240-0000", "1034-121119-0000", "1040-133433-0000")


# --------------------------------------------------------------------------- rows


def tenant(name: str = "acme") -> Tenant:
    """A tenant as `tenant_create` leaves it (default role, first token)."""
    created, _issued = tenant_create(name=name)
    return created


def device(owner: Tenant, device_id: str = "dev-1", device_name: str = "") -> Device:
    """A device of `owner` (named after its id unless `device_name` is given)."""
    return device_create(owner, device_id=device_id, device_name=device_name)


def role(owner: Tenant, name: str = "staff") -> Role:
    """A (non-default) role of `owner`."""
    return role_create(owner, name=name)


def voice(
    owner: Tenant,
    audio: bytes,
    *,
    devices: Iterable[Device] = (),
    role: Role | None = None,
    name: str = "",
    threshold: float | None = None,
) -> Voice:
    """A voice enrolled from one recording with the active engine, bound to `devices`
    (`role` None: the tenant's default role; `threshold` None: the engine's default)."""
    return voice_create(
        owner, audio=audio, devices=devices, role=role, name=name, threshold=threshold
    )


def speaker_voice(
    owner: Tenant, speaker: str, *, devices: Iterable[Device] = (), threshold: float | None = None
) -> Voice:
    """A voice of a zh speaker from all of their zh/enroll recordings: the first creates
    it, the others are added as samples."""
    first, *more = enroll_files(speaker)
    enrolled = voice(owner, first, devices=devices, name=speaker, threshold=threshold)
    for audio in more:
        enrolled = voice_sample_add(enrolled, audio=audio)
    return enrolled


# --------------------------------------------------------------------------- speech


@cache
def _read(path: Path) -> bytes:
    if not path.is_file():
        pytest.skip(f"real speech not found: {path} (../shared/audio)")
    return path.read_bytes()


def speech(speaker: str, n: int = 1) -> bytes:
    """zh/enroll/<speaker>-sr-<n>.wav: an enrollment recording of a zh speaker."""
    return _read(ZH / "enroll" / f"{speaker}-sr-{n}.wav")


def probe_speech(speaker: str, n: int = 1) -> bytes:
    """zh/test/<speaker>-test-sr-<n>.wav: another recording of the same zh speaker."""
    return _read(ZH / "test" / f"{speaker}-test-sr-{n}.wav")


def trial_speech(stem: str) -> bytes:
    """zh/test/3d-speaker/<stem>_16k.wav, 3D-Speaker's example trials: "speaker1_a_cn" and
    "speaker1_b_cn" are one speaker, "speaker2_a_cn" another (also `_en` variants).
    Held out of the fitting of the default thresholds (zh enroll+test and LibriSpeech)."""
    return _read(ZH / "test" / "3d-speaker" / f"{stem}_16k.wav")


def librispeech(utterance: str) -> bytes:
    """librispeech-train-clean-100/<utterance>.flac, e.g. "103-1240-0000"."""
    return _read(LIBRISPEECH / f"{utterance}.flac")


def enroll_files(speaker: str) -> list[bytes]:
    """Every zh/enroll recording of `speaker`, in file-name order."""
    paths = sorted((ZH / "enroll").glob(f"{speaker}-sr-*.wav"))
    if not paths:
        pytest.skip(f"no zh/enroll recordings of {speaker!r} under {ZH} (../shared/audio)")
    return [_read(path) for path in paths]


def probe_files(speaker: str) -> list[tuple[str, bytes]]:
    """Every zh/test recording of `speaker` as (file name, bytes)."""
    paths = sorted((ZH / "test").glob(f"{speaker}-test-sr-*.wav"))
    if not paths:
        pytest.skip(f"no zh/test recordings of {speaker!r} under {ZH} (../shared/audio)")
    return [(path.name, _read(path)) for path in paths]


def silence(seconds: float = 3.0) -> bytes:
    """A WAV of digital silence: decodes fine, holds no speech."""
    return wav(np.zeros(int(SAMPLE_RATE * seconds), dtype=np.int16))


def wav(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """`samples` as a 16-bit PCM WAV."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def seconds_of(audio: bytes) -> float:
    """The length of a recording."""
    return soundfile.info(io.BytesIO(audio)).duration


def decode(audio: bytes) -> tuple[np.ndarray, int]:
    """A recording's samples (float32) and rate."""
    samples, rate = soundfile.read(io.BytesIO(audio), dtype="float32")
    return samples, rate


def with_babble(audio: bytes, snr_db: float, talkers: Iterable[str] = BABBLE_TALKERS) -> bytes:
    """`audio` (16 kHz mono) with LibriSpeech `talkers` speaking over it at `snr_db`: a
    far-field probe in a room where others talk. Each talker is looped to the length."""
    samples, rate = decode(audio)
    noise = [np.resize(decode(librispeech(t))[0], len(samples)) for t in talkers]
    return wav(mix_at_snr(samples, babble(noise), snr_db), rate)


def clip(audio: bytes, start: float, seconds: float) -> bytes:
    """`seconds` of `audio` from `start`, as a WAV of the same rate."""
    samples, rate = soundfile.read(io.BytesIO(audio), dtype="int16")
    return wav(samples[int(start * rate) : int((start + seconds) * rate)], rate)
