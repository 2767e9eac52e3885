"""POST /v1/voice/register: the reply, labels, stores, and the shared voice store."""

from __future__ import annotations

import re

import pytest

from tests.helpers import VP, envelope, nothing_stored
from tests.voice_api.conftest import ENGINE, b64, error, identify, post, register, silence

INVALID = 40000
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

pytestmark = pytest.mark.django_db


def test_register_returns_id_name_and_time(api, speech):
    reply = register(api, speech.enroll("fangjun"), "方俊")
    assert set(reply) == {"id", "name", "registered_at", "enrollment", "similar_voices"}
    assert isinstance(reply["id"], str) and reply["id"]
    assert reply["name"] == "方俊"
    assert ISO_UTC.match(reply["registered_at"]), reply["registered_at"]


def test_each_registration_gets_its_own_id(api, speech):
    first = register(api, speech.enroll("fangjun"), "fangjun")["id"]
    second = register(api, speech.enroll("fangjun"), "fangjun")["id"]
    assert first != second


def test_labels_are_returned_by_identify(api, speech):
    labels = {"team": "audio", "employee_id": "E-042", "名字": "方俊"}
    voice_id = register(api, speech.enroll("fangjun"), "fangjun", labels=labels)["id"]
    (top, *_) = identify(api, speech.enroll("fangjun"))["matches"]
    assert top["id"] == voice_id
    assert top["labels"] == labels


def test_without_labels_identify_gives_an_empty_map(api, speech):
    register(api, speech.enroll("fangjun"), "fangjun")
    assert identify(api, speech.enroll("fangjun"))["matches"][0]["labels"] == {}


def test_stores_are_separate_galleries(api, speech):
    voice_id = register(api, speech.enroll("fangjun"), "fangjun", store="a")["id"]
    assert identify(api, speech.enroll("fangjun"), store="b")["matches"] == []
    assert identify(api, speech.enroll("fangjun"))["matches"] == []  # the "default" store
    assert [m["id"] for m in identify(api, speech.enroll("fangjun"), store="a")["matches"]] == [
        voice_id
    ]


def test_default_store_is_shared_with_the_voiceprint_api(api, speech):
    voice_id = register(api, speech.enroll("fangjun"), "fangjun", labels={"k": "v"})["id"]
    voices = {v["voice_id"]: v for v in envelope(api.get(VP + "voices"))}
    assert voice_id in voices
    assert voices[voice_id]["voice_name"] == "fangjun"
    assert voices[voice_id]["model"] == ENGINE
    assert voices[voice_id]["status"] == "activate"


def test_named_store_voice_is_also_listed_by_the_voiceprint_api(api, speech):
    voice_id = register(api, speech.enroll("fangjun"), "fangjun", store="lobby")["id"]
    assert voice_id in {v["voice_id"] for v in envelope(api.get(VP + "voices"))}


def test_voice_is_invisible_to_another_tenant(api, other_api, speech):
    register(api, speech.enroll("fangjun"), "fangjun")
    assert envelope(other_api.get(VP + "voices")) == []


@pytest.mark.parametrize(
    "labels",
    [
        {"age": 42},
        {"vip": True},
        {"nested": {"a": "b"}},
        {"list": ["a"]},
        {"none": None},
        {f"k{i}": "v" for i in range(33)},
        ["a", "b"],
        "team=audio",
    ],
    ids=["int", "bool", "dict", "list", "null", "too_many", "array", "string"],
)
def test_invalid_labels_are_400(api, speech, labels):
    body = {"audio": b64(speech.enroll("fangjun")), "name": "fangjun", "labels": labels}
    assert "labels" in error(post(api, "register", body), 400, INVALID)
    assert envelope(api.get(VP + "voices")) == []


@pytest.mark.parametrize(
    "name", [None, "", "x" * 1000, ["fangjun"]], ids=["null", "empty", "long", "list"]
)
def test_invalid_name_is_400(api, speech, name):
    body = {"audio": b64(speech.enroll("fangjun")), "name": name}
    assert "name" in error(post(api, "register", body), 400, INVALID)


def test_missing_name_is_400(api, speech):
    body = {"audio": b64(speech.enroll("fangjun"))}
    assert "name" in error(post(api, "register", body), 400, INVALID)
    assert envelope(api.get(VP + "voices")) == []


@pytest.mark.parametrize("store", ["", "a/b", "x" * 65, "a b"])
def test_invalid_store_is_400(api, speech, store):
    body = {"audio": b64(speech.enroll("fangjun")), "name": "fangjun", "store": store}
    assert "store" in error(post(api, "register", body), 400, INVALID)


def test_missing_audio_is_400_no_audio(api):
    assert "audio" in error(post(api, "register", {"name": "fangjun"}), 400, 40001)


def test_silence_is_422_and_stores_nothing(api, media_root):
    body = {"audio": b64(silence()), "name": "quiet"}
    error(post(api, "register", body), 422, 40003)
    assert envelope(api.get(VP + "voices")) == []
    assert not [p for p in media_root.rglob("*") if p.is_file()]


def test_engine_without_weights_is_503_and_stores_nothing(api, speech, media_root):
    body = {"audio": b64(speech.enroll("fangjun")), "name": "fangjun", "model": "eres2net"}
    error(post(api, "register", body), 503, 50300)
    assert envelope(api.get(VP + "voices")) == []
    assert not [p for p in media_root.rglob("*") if p.is_file()]


CONSENT = {
    "subject": "E-042",
    "text_version": "v2",
    "channel": "web",
    "time": "2025-03-04T05:06:07Z",
}


def test_register_stores_the_consent_shown_in_the_voice_object(api, speech):
    voice_id = register(api, speech.enroll("fangjun"), "fangjun", consent=CONSENT)["id"]
    assert envelope(api.get(VP + f"voices/{voice_id}"))["consent"] == CONSENT


def test_a_tenant_that_requires_consent_answers_400_without(api, tenant, speech, media_root):
    tenant.require_consent = True
    tenant.save(update_fields=["require_consent"])
    with nothing_stored(media_root):
        response = post(api, "register", {"audio": b64(speech.enroll("fangjun")), "name": "f"})
        assert error(response, 400, INVALID) == "consent: required by this tenant"
        bad = {**CONSENT, "time": "not a time"}
        response = post(
            api, "register", {"audio": b64(speech.enroll("fangjun")), "name": "f", "consent": bad}
        )
        assert error(response, 400, INVALID).startswith("consent.time:")
    assert register(api, speech.enroll("fangjun"), "f", consent=CONSENT)["name"] == "f"
