"""The audit log: what the API and the console do is recorded per tenant, with its actor,
object, outcome and request id; never audio, embeddings or tokens; read only and exported
in the console; aged out by purge_audit."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_purge, audit_record
from tests import factories as make
from tests.helpers import VP, envelope
from tests.voiceprint.conftest import add_sample, create_device, enroll, identify, post_raw

pytestmark = pytest.mark.django_db


def events(tenant=None, **filters) -> list[AuditEvent]:
    found = AuditEvent.objects.filter(**filters).order_by("at", "pk")
    return list(found if tenant is None else found.filter(tenant=tenant))


def test_api_calls_are_recorded_with_the_token_prefix_and_request_id(api, tenant_and_token):
    tenant, token = tenant_and_token
    prefix = token.split("_")[1]
    create_device(api, "kitchen")
    voice = enroll(api, make.speech("fangjun", 1), "kitchen")
    add_sample(api, voice["voice_id"], make.speech("fangjun", 2))
    envelope(post_raw(api, f"voices/{voice['voice_id']}/samples", make.speech("leijun")), 40900)
    response = post_raw(api, "voices/identify", make.probe_speech("fangjun"), device_id="kitchen")
    assert envelope(response)["decision"] == "match"
    envelope(api.delete(VP + f"voices/{voice['voice_id']}"))

    recorded = [(e.action, e.outcome) for e in events(tenant)]
    assert recorded == [
        ("token.issue", "ok"),  # by tenant_create, outside any request
        ("device.create", "ok"),
        ("voice.create", "ok"),
        ("voice.sample_add", "ok"),
        ("voice.sample_add", "refused: does not match"),
        ("identify", "match"),
        ("voice.delete", "ok"),
    ]
    identified = events(tenant, action="identify")[0]
    assert identified.object_id == "kitchen"
    assert identified.details == {"voice_id": voice["voice_id"]}
    assert identified.request_id == response["X-Request-ID"]
    assert {e.actor for e in events(tenant)[1:]} == {f"token:{prefix}"}
    assert events(tenant)[0].actor == "system" and events(tenant)[0].object_id == prefix
    # Nothing secret or biometric in any event.
    dumped = json.dumps([e.details for e in events()]) + "".join(e.actor for e in events())
    assert token not in dumped and "embedding" not in dumped and "audio" not in dumped


def test_tenants_see_only_their_events(api, other_api):
    create_device(api, "kitchen")
    envelope(other_api.post(VP + "devices", {"device_id": "garage"}, format="json"))
    kitchen, garage = events(object_id="kitchen"), events(object_id="garage")
    assert len(kitchen) == 1 and len(garage) == 1
    assert kitchen[0].tenant_id != garage[0].tenant_id


def test_updates_name_what_they_set(api, tenant_and_token):
    create_device(api, "kitchen")
    voice_id = enroll(api, make.speech("fangjun", 1), "kitchen")["voice_id"]
    body = {"threshold": 0.8, "dev_bind": []}
    envelope(api.put(VP + f"voices/{voice_id}", body, format="json"))
    [update] = events(tenant_and_token[0], action="voice.update")
    assert update.details == {"threshold": 0.8, "devices": []}


def test_events_are_append_only():
    event = audit_record(None, action="test.event")
    event.outcome = "changed"
    with pytest.raises(ValueError, match="append-only"):
        event.save()


def test_purge_keeps_the_retention_period(settings):
    settings.VOICEPRINT_AUDIT_RETENTION_DAYS = 30
    old, recent = audit_record(None, action="old"), audit_record(None, action="recent")
    AuditEvent.objects.filter(pk=old.pk).update(at=timezone.now() - dt.timedelta(days=31))
    assert audit_purge() == 1
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["recent"]
    call_command("purge_audit", stdout=open("/dev/null", "w"))
    assert AuditEvent.objects.filter(pk=recent.pk).exists()


def test_identify_events_are_per_call(api):
    create_device(api, "kitchen")
    enroll(api, make.speech("fangjun", 1), "kitchen")
    for _ in range(3):
        identify(api, make.probe_speech("leijun"), "kitchen")
    assert [e.outcome for e in events(action="identify")] == ["no_match"] * 3


def test_voice_api_calls_are_recorded(api, tenant_and_token):
    import base64

    def b64(audio: bytes) -> str:
        return base64.b64encode(audio).decode()

    fangjun, probe = make.speech("fangjun", 1), make.probe_speech("fangjun")
    registered = api.post(
        "/v1/voice/register", {"audio": b64(fangjun), "name": "fj"}, format="json"
    )
    voice_id = registered.json()["id"]
    api.post("/v1/voice/identify", {"audio": b64(probe)}, format="json")
    api.post("/v1/voice/verify", {"audio1": b64(fangjun), "audio2": b64(probe)}, format="json")
    api.post("/v1/voice/forget", {"id": voice_id}, format="json")

    recorded = [(e.action, e.object_id) for e in events(tenant_and_token[0])[1:]]
    assert recorded == [
        ("voice.create", voice_id),
        ("voice_api.identify", "default"),
        ("voice_api.verify", ""),
        ("voice.delete", voice_id),
    ]
    identified = events(tenant_and_token[0], action="voice_api.identify")[0]
    assert identified.outcome == "match" and identified.details == {"matches": [voice_id]}
