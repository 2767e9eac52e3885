"""Everything the service holds about one voice, in one ZIP archive: what a person may ask
for about their biometric data (README, "Security").

- `voice.json`: the voice's record (ids, name, labels, store, threshold, role, devices,
  engine, dates), its consent record (or null), its enrollment progress, and each
  sample's metadata (kind, durations, quality, agreement, date, its file in the archive or
  when its audio was purged);
- `samples/<n>.wav`: each sample's recording as enrolled (decrypted), `n` as in
  `voices/{id}/audio?sample=n`; a sample whose recording the retention purged is listed
  with `"file": null` and its `audio_purged_at`;
- `audit.jsonl`: the audit events about the voice, oldest first.

The voiceprint itself (embeddings) is derived data of no use outside this engine and is
left out, as the audit log never holds one either.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from typing import IO

from audit.selectors import audit_event_data, audit_event_list
from audit.services import audit_record
from voiceprint.models import Voice
from voiceprint.selectors import voice_consent, voice_enrollment, voice_sample_list
from voiceprint.services.storage import audio_read


def voice_export(voice: Voice) -> IO[bytes]:
    """The archive, as a temporary file positioned at its start (the caller closes it); the
    export is itself an audit event."""
    archive = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        samples = []
        for index, sample in enumerate(voice_sample_list(voice)):
            name = None  # purged after VOICEPRINT_AUDIO_RETENTION_DAYS: only its record
            if sample.audio_purged_at is None:
                name = f"samples/{index}.wav"
                zipped.writestr(name, audio_read(sample.audio.name))
            samples.append(_sample_data(sample, index, name))
        record = {**_voice_data(voice), "samples": samples}
        zipped.writestr("voice.json", json.dumps(record, ensure_ascii=False, indent=2))
        events = audit_event_list(voice.tenant, object_id=voice.voice_id).order_by("at", "pk")
        lines = "".join(json.dumps(audit_event_data(e), ensure_ascii=False) + "\n" for e in events)
        zipped.writestr("audit.jsonl", lines)
    archive.seek(0)
    audit_record(voice.tenant, action="voice.export", object_type="voice", object_id=voice.voice_id)
    return archive


def _voice_data(voice: Voice) -> dict:
    return {
        "voice_id": voice.voice_id,
        "voice_name": voice.name,
        "store": voice.store,
        "labels": voice.labels,
        "threshold": voice.threshold,
        "role": {"role_id": voice.role.role_id, "role_name": voice.role.name}
        if voice.role
        else None,
        "devices": [
            {"device_id": d.device_id, "device_name": d.device_name} for d in voice.devices.all()
        ],
        "model": voice.engine_name,
        "created_at": _iso(voice.created_at),
        "updated_at": _iso(voice.updated_at),
        "enrollment": voice_enrollment(voice).as_dict(),
        "consent": voice_consent(voice),
    }


def _sample_data(sample, index: int, name: str | None) -> dict:
    return {
        "sample": index,
        "file": name,
        "kind": sample.kind,
        "duration_seconds": sample.duration_seconds,
        "speech_seconds": sample.speech_seconds,
        "snr_db": sample.snr_db,
        "clipping": sample.clipping,
        "agreement": sample.agreement,
        "created_at": _iso(sample.created_at),
        "audio_purged_at": _iso(sample.audio_purged_at) if sample.audio_purged_at else None,
    }


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")
