"""Enrollment audio encrypted at rest (voiceprint/services/storage.py): what storage holds,
what is served, audio stored before encryption, key rotation, tampering, re-embedding."""

from __future__ import annotations

import base64
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

import engine
from tests.conftest import stored_files
from tests.helpers import VP, envelope
from tests.voiceprint.conftest import add_sample, create_device, enroll
from utilities.sealing import MAGIC, key_id, new_key, sealed_key_id
from voiceprint.models import Voice, VoiceSample
from voiceprint.services import Reembed, voice_reembed, wav_encode

pytestmark = pytest.mark.django_db

OLD_KEY, NEW_KEY = new_key(), new_key()


def key_id_of(key: str) -> bytes:
    return key_id(base64.b64decode(key))


@pytest.fixture(autouse=True)
def old_key(settings):
    settings.VOICEPRINT_AUDIO_KEY = [OLD_KEY]


@pytest.fixture
def voice(api, speech) -> dict:
    create_device(api, "dev-a")
    return enroll(api, speech.enroll("fangjun"), "dev-a", voice_name="fangjun")


def served(api, voice_id: str, sample: int = 0):
    return api.get(VP + f"voices/{voice_id}/audio", {"sample": str(sample)})


def served_wav(api, voice_id: str, sample: int = 0) -> bytes:
    response = served(api, voice_id, sample)
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    return b"".join(response.streaming_content)


def expected_wav(audio: bytes) -> bytes:
    """The WAV enrollment keeps of `audio`: decoded to 16 kHz mono, 16-bit."""
    return wav_encode(engine.decode_audio(audio))


def stored_bytes(media_root: Path, voice_id: str) -> list[bytes]:
    samples = VoiceSample.objects.filter(voice__voice_id=voice_id).order_by("pk")
    return [(media_root / s.audio.name).read_bytes() for s in samples]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_storage_holds_no_wav_and_no_pcm(api, speech, voice, media_root):
    wav = expected_wav(speech.enroll("fangjun"))
    (blob,) = stored_bytes(media_root, voice["voice_id"])
    assert blob.startswith(MAGIC) and b"RIFF" not in blob[:64]
    assert sealed_key_id(blob) == key_id_of(OLD_KEY)
    pcm = wav[44:]  # after the canonical 44-byte header soundfile writes
    assert len(pcm) > 10_000
    windows = [pcm[i : i + 32] for i in range(0, len(pcm) - 32, len(pcm) // 50)]
    assert not any(window in blob for window in windows)
    assert [p.endswith(".wav.enc") for p in stored_files(media_root)] == [True]


def test_the_audio_endpoint_serves_the_exact_wav(api, speech, voice):
    assert served_wav(api, voice["voice_id"]) == expected_wav(speech.enroll("fangjun"))


def test_audio_stored_before_encryption_is_still_served(api, speech, voice):
    legacy = expected_wav(speech.enroll("leijun"))
    name = default_storage.save("voices/legacy.wav", ContentFile(legacy))
    VoiceSample.objects.filter(voice__voice_id=voice["voice_id"]).update(audio=name)
    assert served_wav(api, voice["voice_id"]) == legacy


def test_a_sealed_file_replaced_by_plaintext_is_refused(api, speech, voice, media_root):
    """The database's name says the file is sealed: a WAV put in its place is not served."""
    (sample,) = VoiceSample.objects.filter(voice__voice_id=voice["voice_id"])
    (media_root / sample.audio.name).write_bytes(expected_wav(speech.enroll("leijun")))
    response = served(api, voice["voice_id"])
    assert envelope(response, 50000) is None
    assert "not a sealed blob" in response.json()["msg"]


def test_a_tampered_file_is_refused_with_a_clear_error(api, voice, media_root):
    (sample,) = VoiceSample.objects.filter(voice__voice_id=voice["voice_id"])
    stored = media_root / sample.audio.name
    blob = bytearray(stored.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    stored.write_bytes(bytes(blob))

    response = served(api, voice["voice_id"])

    assert envelope(response, 50000) is None
    message = response.json()["msg"]
    assert "failed authentication" in message and "Traceback" not in message
    # Re-embedding refuses it too, rather than embedding altered audio.
    Voice.objects.filter(voice_id=voice["voice_id"]).update(engine_name="campplus")
    with pytest.raises(Exception, match="failed authentication"):
        voice_reembed(Voice.objects.get(voice_id=voice["voice_id"]), engine_name="ge2e")


def test_without_its_key_the_audio_is_50300_naming_the_variable(api, voice, settings):
    settings.VOICEPRINT_AUDIO_KEY = [NEW_KEY]
    response = served(api, voice["voice_id"])
    assert envelope(response, 50300) is None
    message = response.json()["msg"]
    assert "VOICEPRINT_AUDIO_KEY" in message and key_id_of(OLD_KEY).hex() in message
    assert OLD_KEY not in message and NEW_KEY not in message


def test_rotation_reencrypts_everything_then_the_old_key_can_go(
    api, speech, voice, media_root, settings, django_capture_on_commit_callbacks
):
    """Two sealed samples and one stored before encryption; after the rotation all three
    are sealed with the new key, under new names, the old files are gone, and the audio
    is served unchanged with the old key removed."""
    voice_id = voice["voice_id"]
    add_sample(api, voice_id, speech.enroll("fangjun", 2))
    legacy_wav = expected_wav(speech.enroll("fangjun", 3))
    legacy = default_storage.save("voices/legacy.wav", ContentFile(legacy_wav))
    voice_row = Voice.objects.get(voice_id=voice_id)
    VoiceSample.objects.create(
        voice=voice_row, audio=legacy, engine_name="ge2e", embedding=voice_row.centroid,
        duration_seconds=1.0, speech_seconds=1.0,
    )  # fmt: skip
    before = [served_wav(api, voice_id, i) for i in range(3)]
    old_files = stored_files(media_root)

    settings.VOICEPRINT_AUDIO_KEY = [NEW_KEY, OLD_KEY]
    with django_capture_on_commit_callbacks(execute=True):
        report = run("rotate_audio_key")

    assert report.startswith("3 sample(s) re-encrypted with key " + key_id_of(NEW_KEY).hex())
    files = stored_files(media_root)
    assert len(files) == 3 and not files & old_files  # new names; the old files deleted
    assert all(sealed_key_id(blob) == key_id_of(NEW_KEY)
               for blob in stored_bytes(media_root, voice_id))  # fmt: skip

    settings.VOICEPRINT_AUDIO_KEY = [NEW_KEY]
    assert [served_wav(api, voice_id, i) for i in range(3)] == before
    assert before[2] == legacy_wav
    # Idempotent: a second run changes nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert run("rotate_audio_key").startswith("0 sample(s) re-encrypted")
    assert stored_files(media_root) == files


def test_rotation_reports_what_it_cannot_open_and_a_retry_finishes(voice, settings):
    settings.VOICEPRINT_AUDIO_KEY = [NEW_KEY]  # the old key is missing
    err = StringIO()
    with pytest.raises(CommandError, match="1 sample"):
        call_command("rotate_audio_key", "--no-progress", stdout=StringIO(), stderr=err)
    assert "VOICEPRINT_AUDIO_KEY" in err.getvalue()
    assert OLD_KEY not in err.getvalue() and NEW_KEY not in err.getvalue()
    settings.VOICEPRINT_AUDIO_KEY = [NEW_KEY, OLD_KEY]  # put back: the retry succeeds
    assert run("rotate_audio_key").startswith("1 sample(s) re-encrypted")


def test_reembed_reads_encrypted_audio(api, voice, settings):
    settings.VOICEPRINT_AUDIO_KEY = [NEW_KEY, OLD_KEY]
    run("rotate_audio_key")
    settings.VOICEPRINT_AUDIO_KEY = [NEW_KEY]
    row = Voice.objects.get(voice_id=voice["voice_id"])
    original = np.asarray(row.centroid)
    Voice.objects.filter(pk=row.pk).update(engine_name="campplus", centroid=np.ones(256) / 16)

    assert voice_reembed(row, engine_name="ge2e") is Reembed.REEMBEDDED

    row.refresh_from_db()
    np.testing.assert_allclose(np.asarray(row.centroid), original, atol=1e-4)


def test_new_key_prints_a_usable_key(settings):
    key = run("rotate_audio_key", "--new-key").strip()
    settings.VOICEPRINT_AUDIO_KEY = [key]
    assert run("rotate_audio_key").startswith("0 sample(s)")


def test_any_storage_backend_gets_the_sealed_bytes(api, speech, settings, media_root):
    """Encryption happens before the backend: another one (here Django's in-memory
    storage, standing in for S3, which this machine cannot reach) stores the same sealed
    bytes and serves the same WAV."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    create_device(api, "dev-a")
    voice = enroll(api, speech.enroll("fangjun"), "dev-a", voice_name="fangjun")

    (sample,) = VoiceSample.objects.filter(voice__voice_id=voice["voice_id"])
    with default_storage.open(sample.audio.name, "rb") as stored:
        assert sealed_key_id(stored.read()) == key_id_of(OLD_KEY)
    assert stored_files(media_root) == set()  # nothing went to the filesystem
    assert served_wav(api, voice["voice_id"]) == expected_wav(speech.enroll("fangjun"))
