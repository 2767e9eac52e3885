"""POST /v1/voice/identify (1:N over a store) and POST /v1/voice/forget."""

from __future__ import annotations

import math

import pytest

from tests.conftest import stored_files
from tests.helpers import VP, check_quality, envelope
from tests.voice_api.conftest import (
    ENGINE,
    PROBE_SECONDS,
    ZH_SPEAKERS,
    b64,
    error,
    identify,
    post,
    register,
)
from voiceprint.thresholds import default_similarity_threshold

MATCH_FIELDS = {"id", "name", "labels", "distance", "confidence", "match"}
INVALID, NOT_FOUND, UNAVAILABLE = 40000, 40400, 50300
#: The zh gallery is made of files the default threshold was chosen on (tests/conftest.py
#: HELD_OUT_AUDIO): tests on it require each decision to clear the default distance (0.25)
#: by this much (measured with ge2e: own speaker at most 0.19, anyone else at least 0.30).
#: Decisions on speakers it never saw: test_held_out_speakers_at_the_default_threshold.
IN_SAMPLE_MARGIN = 0.04

pytestmark = pytest.mark.django_db


def check_matches(reply: dict) -> list[dict]:
    assert set(reply) == {"matches", "model", "processing_time_ms", "quality", "decision"}
    assert reply["decision"] in ("match", "no_match", "uncertain")
    if not reply["matches"]:
        assert reply["decision"] == "no_match"
    assert reply["model"] == ENGINE
    assert isinstance(reply["processing_time_ms"], int) and reply["processing_time_ms"] >= 0
    matches = reply["matches"]
    for m in matches:
        assert set(m) == MATCH_FIELDS
        assert 0.0 <= m["confidence"] <= 1.0
    distances = [m["distance"] for m in matches]
    assert distances == sorted(distances), "matches must come nearest first"
    return matches


def default_distance() -> float:
    return 1.0 - default_similarity_threshold(ENGINE)


def forget(api, voice_id: str):
    return post(api, "forget", {"id": voice_id})


# --------------------------------------------------------------------------- identify


@pytest.mark.parametrize("speaker", ZH_SPEAKERS)
def test_each_test_recording_finds_its_speaker(api, speech, zh_gallery, speaker):
    for file_name, audio in speech.zh_tests(speaker):
        reply = identify(api, audio, store="zh")
        matches = check_matches(reply)
        check_quality(reply["quality"], recording_seconds=PROBE_SECONDS)
        top = matches[0]
        assert (top["name"], top["id"]) == (speaker, zh_gallery[speaker]), file_name
        assert top["match"] is True, (file_name, top)
        assert top["distance"] <= default_distance() - IN_SAMPLE_MARGIN, (file_name, top)
        assert top["confidence"] > 0.5
        assert [m["match"] for m in matches[1:]] == [False] * (len(matches) - 1), file_name


@pytest.mark.parametrize(
    "stranger", ["3d:speaker2_a_cn", "3d:speaker2_a_en", "libri:118-121721-0000"]
)
def test_an_unregistered_speaker_does_not_match(api, speech, zh_gallery, stranger):
    kind, name = stranger.split(":")
    audio = speech.speaker3d(name) if kind == "3d" else speech.librispeech(name)
    top = check_matches(identify(api, audio, store="zh"))[0]
    assert top["match"] is False, top
    assert top["distance"] >= default_distance() + IN_SAMPLE_MARGIN, top
    assert top["confidence"] < 0.5


def test_held_out_speakers_at_the_default_threshold(api, speech):
    # Held-out speakers. Measured with ge2e on 4 s clips (the default distance: 0.25):
    # speaker1_b is at 0.18 (en) and 0.22 (cn: a margin of 0.03) from speaker1_a, and at
    # least 0.42 from speaker2_a.
    for language in ("en", "cn"):
        one = register(api, speech.speaker3d(f"speaker1_a_{language}"), "one", store=language)
        two = register(api, speech.speaker3d(f"speaker2_a_{language}"), "two", store=language)
        probe = speech.speaker3d(f"speaker1_b_{language}")
        matches = check_matches(identify(api, probe, store=language))
        assert [(m["id"], m["match"]) for m in matches] == [(one["id"], True), (two["id"], False)]
        assert matches[0]["distance"] <= default_distance() < matches[1]["distance"]


def test_top_k_limits_the_matches(api, speech, zh_gallery):
    for n, speaker in enumerate(["fangjun", "fangjun", "leijun", "liudehua"], start=1):
        register(api, speech.enroll(speaker, 1), f"{speaker}-{n}", store="zh")
    probe = speech.enroll("leijun")
    assert len(check_matches(identify(api, probe, store="zh"))) == 5  # the default
    assert len(check_matches(identify(api, probe, store="zh", top_k=2))) == 2
    assert len(check_matches(identify(api, probe, store="zh", top_k=100))) == 7
    assert len(check_matches(identify(api, probe, store="zh", top_k=1))) == 1


@pytest.mark.parametrize("top_k", [0, -1, 101, "five"])
def test_invalid_top_k_is_400(api, speech, top_k):
    body = {"audio": b64(speech.enroll("leijun")), "top_k": top_k}
    assert "top_k" in error(post(api, "identify", body), 400, INVALID)


def test_threshold_is_a_distance(api, speech, zh_gallery):
    probe = speech.zh_tests("leijun")[0][1]
    default = check_matches(identify(api, probe, store="zh"))
    assert [m["match"] for m in default] == [True, False, False]
    nobody = check_matches(identify(api, probe, store="zh", threshold=0.0))
    assert [m["match"] for m in nobody] == [False] * 3
    everybody = check_matches(identify(api, probe, store="zh", threshold=2.0))
    assert [m["match"] for m in everybody] == [True] * 3
    between = (default[1]["distance"] + default[2]["distance"]) / 2
    two = check_matches(identify(api, probe, store="zh", threshold=between))
    assert [m["match"] for m in two] == [True, True, False]
    for m in two:
        assert m["match"] is (m["distance"] <= between)
        assert (m["confidence"] >= 0.5) is m["match"]


def test_a_distance_exactly_on_the_threshold_matches(api, speech):
    """`match` is `distance <= threshold`, on the distance the reply gives (the service
    compares that same rounded value): on it a match, one float below it not."""
    voice_id = register(api, speech.speaker3d("speaker1_a_en"), "speaker1", store="s")["id"]
    probe = speech.speaker3d("speaker1_b_en")
    distance = identify(api, probe, store="s")["matches"][0]["distance"]
    (on,) = check_matches(identify(api, probe, store="s", threshold=distance))
    assert (on["id"], on["distance"], on["match"]) == (voice_id, distance, True)
    (below,) = check_matches(
        identify(api, probe, store="s", threshold=math.nextafter(distance, 0.0))
    )
    assert (below["distance"], below["match"]) == (distance, False)


def test_distances_do_not_depend_on_the_threshold(api, speech, zh_gallery):
    probe = speech.zh_tests("fangjun")[0][1]
    plain = identify(api, probe, store="zh")["matches"]
    strict = identify(api, probe, store="zh", threshold=0.01)["matches"]
    assert [(m["id"], m["distance"]) for m in plain] == [(m["id"], m["distance"]) for m in strict]


def test_empty_store_has_no_matches(api, speech):
    reply = identify(api, speech.enroll("fangjun"), store="nobody-here")
    assert check_matches(reply) == []


def test_another_tenants_voices_are_never_returned(api, other_api, speech, zh_gallery):
    probe = speech.zh_tests("fangjun")[0][1]
    assert identify(other_api, probe, store="zh")["matches"] == []
    own = register(other_api, speech.enroll("leijun"), "globex-leijun", store="zh")["id"]
    ids = {m["id"] for m in identify(api, probe, store="zh", top_k=100)["matches"]}
    assert ids == set(zh_gallery.values()) and own not in ids
    assert [m["id"] for m in identify(other_api, probe, store="zh")["matches"]] == [own]


def test_identify_with_an_engine_without_weights_is_503(api, speech, zh_gallery):
    body = {"audio": b64(speech.enroll("fangjun")), "store": "zh", "model": "eres2net"}
    error(post(api, "identify", body), 503, UNAVAILABLE)


# --------------------------------------------------------------------------- forget


def test_forget_is_204_with_an_empty_body(api, speech, zh_gallery):
    response = forget(api, zh_gallery["fangjun"])
    assert response.status_code == 204
    assert response.content == b""


def test_a_forgotten_voice_is_no_longer_identified(
    api, speech, zh_gallery, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert forget(api, zh_gallery["fangjun"]).status_code == 204
    ids = {m["id"] for m in identify(api, speech.zh_tests("fangjun")[0][1], store="zh")["matches"]}
    assert ids == {zh_gallery["leijun"], zh_gallery["liudehua"]}
    assert zh_gallery["fangjun"] not in {v["voice_id"] for v in envelope(api.get(VP + "voices"))}
    assert len(stored_files(media_root)) == 2, "its audio must go too"


def test_forgetting_twice_is_404(api, speech, zh_gallery):
    assert forget(api, zh_gallery["fangjun"]).status_code == 204
    error(forget(api, zh_gallery["fangjun"]), 404, NOT_FOUND)


def test_unknown_id_is_404(api):
    error(forget(api, "0123456789abcdef01234567"), 404, NOT_FOUND)


def test_another_tenants_id_is_404_and_the_voice_stays(api, other_api, speech, zh_gallery):
    error(forget(other_api, zh_gallery["fangjun"]), 404, NOT_FOUND)
    top = identify(api, speech.zh_tests("fangjun")[0][1], store="zh")["matches"][0]
    assert top["id"] == zh_gallery["fangjun"]


def test_voiceprint_api_voices_share_the_default_store(api, speech):
    envelope(api.post(VP + "devices", {"device_id": "dev-a"}, format="json"))
    enrolled = envelope(
        api.post(
            VP + "voices/create",
            data=speech.enroll("leijun"),
            content_type="audio/wav",
            HTTP_X_DEVICE_ID="dev-a",
            HTTP_X_VOICE_NAME="leijun",
        )
    )
    top = identify(api, speech.zh_tests("leijun")[0][1])["matches"][0]
    assert (top["id"], top["name"], top["labels"]) == (enrolled["voice_id"], "leijun", {})
    assert top["match"] is True
    assert forget(api, enrolled["voice_id"]).status_code == 204
    envelope(api.get(VP + f"voices/{enrolled['voice_id']}"), NOT_FOUND)


@pytest.mark.parametrize("body", [{}, {"id": ""}, {"id": None}, {"id": "x" * 65}])
def test_forget_without_a_valid_id_is_400(api, body):
    assert "id" in error(post(api, "forget", body), 400, INVALID)
