"""A person's rights over their voice: everything held about it in one archive, and a
deletion that leaves nothing behind in the database, the storage or the logs."""

from __future__ import annotations

import io
import json
import logging
import zipfile

import numpy as np
import pytest

from audit.models import AuditEvent
from tests.conftest import stored_files
from tests.helpers import VP, envelope
from tests.voiceprint.conftest import add_sample, create_device, enroll, identify
from voiceprint.models import Voice, VoiceBinding, VoiceSample

pytestmark = pytest.mark.django_db


def audio_of(api, voice_id: str, index: int) -> bytes:
    response = api.get(VP + f"voices/{voice_id}/audio", {"sample": str(index)})
    return b"".join(response.streaming_content)


def test_export_holds_the_record_the_recordings_and_the_audit_events(api, speech):
    create_device(api, "kitchen", "Kitchen")
    voice = enroll(api, speech.enroll("fangjun", 1), "kitchen", voice_name="dad")
    voice_id = voice["voice_id"]
    add_sample(api, voice_id, speech.enroll("fangjun", 2))

    response = api.get(VP + f"voices/{voice_id}/export")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == [
        "audit.jsonl", "samples/0.wav", "samples/1.wav", "voice.json",
    ]  # fmt: skip

    record = json.loads(archive.read("voice.json"))
    assert record["voice_id"] == voice_id and record["voice_name"] == "dad"
    assert record["devices"] == [{"device_id": "kitchen", "device_name": "Kitchen"}]
    assert record["enrollment"] == envelope(api.get(VP + f"voices/{voice_id}"))["enrollment"]
    assert [s["file"] for s in record["samples"]] == ["samples/0.wav", "samples/1.wav"]
    for index in (0, 1):
        assert archive.read(f"samples/{index}.wav") == audio_of(api, voice_id, index)
    events = [json.loads(line) for line in archive.read("audit.jsonl").splitlines()]
    assert [e["action"] for e in events] == ["voice.create", "voice.sample_add"]
    assert "embedding" not in archive.read("voice.json").decode()
    # The export is recorded too.
    assert AuditEvent.objects.filter(action="voice.export", object_id=voice_id).exists()


def test_export_of_an_unknown_voice_is_40400(api):
    envelope(api.get(VP + "voices/nope/export"), 40400)


def test_deleting_a_voice_leaves_nothing_behind(
    api, speech, media_root, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    create_device(api, "kitchen")
    voice_id = enroll(api, speech.enroll("fangjun", 1), "kitchen")["voice_id"]
    add_sample(api, voice_id, speech.enroll("fangjun", 2))
    identify(api, speech.test("fangjun"), "kitchen")
    stored = Voice.objects.get(voice_id=voice_id)
    centroid = np.asarray(stored.centroid)
    assert len(stored_files(media_root)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        envelope(api.delete(VP + f"voices/{voice_id}"))

    # Database: no voice, sample, binding or embedding of it.
    assert not Voice.objects.filter(voice_id=voice_id).exists()
    assert not VoiceSample.objects.exists() and not VoiceBinding.objects.exists()
    # Storage: no recording.
    assert not stored_files(media_root)
    # Logs and the audit log: ids and outcomes only, never a number of its voiceprint.
    logged = caplog.text + json.dumps(list(AuditEvent.objects.values("details", "actor")))
    for value in centroid[:8]:
        assert f"{value:.6f}"[:8] not in logged
    assert AuditEvent.objects.filter(action="voice.delete", object_id=voice_id).exists()
