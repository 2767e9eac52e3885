"""Enrollment that guides, through the Voiceprint API and the Voice API, on real speech:
progress and issues, the quality gates (40003), the contamination check (40900 unless
force), per-sample agreement, and look-alikes (similar_voices, warn or refuse)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from tests import factories as make
from tests.engine.conftest import mix_at_snr
from tests.helpers import VP, envelope, nothing_stored, voice_object
from tests.voiceprint.conftest import add_sample, create_device, enroll, get_voice, post_raw
from voiceprint.models import Voice, VoiceSample

pytestmark = pytest.mark.django_db

KITCHEN = "kitchen"
#: Long LibriSpeech utterances (14-16 s), cut into parts of one speaker.
READER, OTHER_READER = "1069-133699-0000", "1116-132847-0000"


def part(utterance: str, index: int, seconds: float = 4.0) -> bytes:
    """The `index`-th `seconds`-long part of a LibriSpeech utterance."""
    return make.clip(make.librispeech(utterance), 0.5 + index * seconds, seconds)


def with_white_noise(audio: bytes, snr_db: float) -> bytes:
    """`audio` with steady (fan-like) noise at `snr_db`: the SNR estimate reads it well."""
    samples, _ = make.decode(audio)
    noise = np.random.default_rng(0).normal(size=len(samples)).astype(np.float32)
    return make.wav(mix_at_snr(samples, noise, snr_db))


def clipped(audio: bytes, gain: float) -> bytes:
    """`audio` amplified by `gain` (of its peak) and hard-clipped at full scale."""
    samples, _ = make.decode(audio)
    return make.wav(np.clip(samples * gain / np.abs(samples).max(), -1.0, 1.0))


@pytest.fixture
def kitchen(api) -> str:
    create_device(api, KITCHEN)
    return KITCHEN


# --------------------------------------------------------------------------- progress


def test_enrollment_progress_grows_with_each_sample(api, speech, kitchen, settings):
    settings.VOICEPRINT_ENROLL_TARGET_SECONDS = 12.0
    voice = enroll(api, speech.enroll("fangjun", 1), kitchen)
    first = voice["enrollment"]
    assert first["target_speech_seconds"] == 12.0
    assert 1.5 <= first["speech_seconds"] <= make.seconds_of(speech.enroll("fangjun", 1))
    assert first["progress"] == pytest.approx(first["speech_seconds"] / 12.0, abs=1e-3)
    missing = int(np.ceil(12.0 - first["speech_seconds"]))
    assert f"add {missing} s more speech" in first["issues"]

    voice = add_sample(api, voice["voice_id"], speech.enroll("fangjun", 2))
    second = voice["enrollment"]
    assert second["speech_seconds"] > first["speech_seconds"]
    assert second["progress"] > first["progress"]
    # GET voices/{id} shows the same, and so does the list.
    assert get_voice(api, voice["voice_id"])["enrollment"] == second
    listed = envelope(api.get(VP + "voices"))
    assert [v["enrollment"] for v in listed] == [second]


def test_a_voice_at_its_target_has_nothing_more_to_add(api, speech, kitchen, settings):
    settings.VOICEPRINT_ENROLL_TARGET_SECONDS = 1.5
    enrollment = enroll(api, speech.enroll("fangjun", 2), kitchen)["enrollment"]
    assert enrollment["progress"] == 1.0
    assert not any(issue.startswith("add ") for issue in enrollment["issues"])


def test_a_noisy_sample_that_passes_the_gate_is_named_in_the_issues(api, speech, kitchen):
    noisy = with_white_noise(speech.enroll("fangjun", 2), 14.0)
    issues = enroll(api, noisy, kitchen)["enrollment"]["issues"]
    assert any(issue.startswith("noisy: SNR ") and "sample #0" in issue for issue in issues)


# --------------------------------------------------------------------------- quality gates


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda audio: with_white_noise(audio, 0.0), "too noisy: SNR"),
        (lambda audio: clipped(audio, 3.0), "too clipped"),
        (lambda audio: make.clip(audio, 0.0, 1.6), "too short"),
    ],
    ids=["noisy", "clipped", "short"],
)
def test_gates_refuse_a_bad_recording_and_store_nothing(
    api, speech, kitchen, media_root, spoil, reason
):
    voice = enroll(api, speech.enroll("fangjun", 1), kitchen)
    bad = spoil(speech.enroll("fangjun", 2))
    with nothing_stored(media_root):
        for path, params in (
            ("voices/create", {"device_id": kitchen}),
            (f"voices/{voice['voice_id']}/samples", {}),
        ):
            response = post_raw(api, path, bad, **params)
            envelope(response, 40003)
            assert reason in response.json()["msg"], response.json()["msg"]
        # force does not open the quality gates.
        envelope(post_raw(api, f"voices/{voice['voice_id']}/samples", bad, force="true"), 40003)


# --------------------------------------------------------------------------- contamination


def test_a_sample_of_someone_else_is_refused_unless_forced(api, speech, kitchen, media_root):
    voice = enroll(api, speech.enroll("fangjun", 2), kitchen)
    voice_id = voice["voice_id"]
    path = f"voices/{voice_id}/samples"
    with nothing_stored(media_root):
        response = post_raw(api, path, speech.enroll("leijun", 1))
        envelope(response, 40900)
    message = response.json()["msg"]
    assert message.startswith(f"sample does not match voice {voice_id} (score 0.")

    forced = add_sample(api, voice_id, speech.enroll("leijun", 1), force="true")
    assert forced["sample_count"] == 2
    # Both samples now disagree with each other: each is named as a possible outlier.
    agreements = list(
        VoiceSample.objects.filter(voice__voice_id=voice_id).values_list("agreement", flat=True)
    )
    assert len(agreements) == 2 and all(a < 0.75 for a in agreements)
    assert any("does not agree with the others" in i for i in forced["enrollment"]["issues"])


def test_the_same_speaker_is_accepted_and_agrees(api, speech, kitchen):
    voice = enroll(api, speech.enroll("fangjun", 1), kitchen)
    for n in (2, 3):
        voice = add_sample(api, voice["voice_id"], speech.enroll("fangjun", n))
    assert voice["sample_count"] == 3
    samples = VoiceSample.objects.filter(voice__voice_id=voice["voice_id"])
    assert all(sample.agreement > 0.75 for sample in samples)
    assert not any("does not agree" in i for i in voice["enrollment"]["issues"])


def test_librispeech_parts_of_one_reader_join_another_reader_is_refused(api, kitchen):
    voice = enroll(api, part(READER, 0), kitchen)
    voice = add_sample(api, voice["voice_id"], part(READER, 1))
    assert voice["sample_count"] == 2
    refused = post_raw(api, f"voices/{voice['voice_id']}/samples", part(OTHER_READER, 0))
    envelope(refused, 40900)
    assert "sample does not match voice" in refused.json()["msg"]


def test_forced_sample_by_form_field_and_json(api, speech, kitchen):
    voice_id = enroll(api, speech.enroll("fangjun", 2), kitchen)["voice_id"]
    other = base64.b64encode(speech.enroll("liudehua", 1)).decode()
    path = VP + f"voices/{voice_id}/samples"
    envelope(api.post(path, {"audio_base64": other}, format="json"), 40900)
    added = envelope(api.post(path, {"audio_base64": other, "force": True}, format="json"))
    assert voice_object(added)["sample_count"] == 2


# --------------------------------------------------------------------------- look-alikes


def test_similar_voices_report_the_closest_voices_on_the_device(api, speech, kitchen):
    fangjun = enroll(api, speech.enroll("fangjun", 2), kitchen, voice_name="dad")
    leijun = enroll(api, speech.enroll("leijun", 1), kitchen, voice_name="uncle")
    reply = envelope(post_raw(api, "voices/create", speech.enroll("fangjun", 3), device_id=kitchen))
    similar = {s["voice_id"]: s for s in reply["similar_voices"]}
    assert set(similar) == {fangjun["voice_id"], leijun["voice_id"]}
    assert reply["similar_voices"][0]["voice_id"] == fangjun["voice_id"]  # most similar first
    assert similar[fangjun["voice_id"]] | {"score": None} == {
        "voice_id": fangjun["voice_id"], "voice_name": "dad", "score": None, "lookalike": True,
    }  # fmt: skip
    assert similar[fangjun["voice_id"]]["score"] > similar[leijun["voice_id"]]["score"]
    assert similar[leijun["voice_id"]]["lookalike"] is False
    assert any(
        issue.startswith(f'sounds like voice {fangjun["voice_id"]} "dad" (score ')
        for issue in reply["enrollment"]["issues"]
    )


def test_voices_elsewhere_are_not_similar(api, speech, kitchen):
    create_device(api, "garage")
    envelope(post_raw(api, "voices/create", speech.enroll("fangjun", 2), device_id="garage"))
    # Every Voiceprint API voice is in the default store: the garage's voice is a
    # candidate too, through the store. A Voice API store of its own is not.
    audio = base64.b64encode(speech.enroll("fangjun", 3)).decode()
    registered = api.post(
        "/v1/voice/register", {"audio": audio, "name": "x", "store": "lab"}, format="json"
    )
    assert registered.status_code == 200, registered.content
    assert registered.json()["similar_voices"] == []


def test_lookalike_policy_refuse(api, speech, kitchen, settings, media_root):
    settings.VOICEPRINT_LOOKALIKE_POLICY = "refuse"
    first = enroll(api, speech.enroll("fangjun", 2), kitchen, voice_name="dad")
    with nothing_stored(media_root):
        response = post_raw(api, "voices/create", speech.enroll("fangjun", 3), device_id=kitchen)
        envelope(response, 40900)
    assert response.json()["msg"].startswith(f'already enrolled as voice {first["voice_id"]} "dad"')
    # Someone else is enrolled; the same person again is with force.
    enroll(api, speech.enroll("leijun", 1), kitchen)
    forced = enroll(api, speech.enroll("fangjun", 3), kitchen, force="true")
    assert Voice.objects.filter(voice_id=forced["voice_id"]).exists()


# --------------------------------------------------------------------------- Voice API


def test_voice_api_register_reports_enrollment_and_refuses_lookalikes(api, speech, settings):
    def register(audio: bytes, **extra):
        body = {"audio": base64.b64encode(audio).decode(), "name": "n", **extra}
        return api.post("/v1/voice/register", body, format="json")

    first = register(speech.enroll("fangjun", 2))
    assert first.status_code == 200, first.content
    enrollment = first.json()["enrollment"]
    assert enrollment["speech_seconds"] > 1.5 and 0 < enrollment["progress"] < 1
    assert first.json()["similar_voices"] == []

    second = register(speech.enroll("fangjun", 3)).json()
    assert [s["voice_id"] for s in second["similar_voices"]] == [first.json()["id"]]
    assert second["similar_voices"][0]["lookalike"] is True

    settings.VOICEPRINT_LOOKALIKE_POLICY = "refuse"
    refused = register(speech.enroll("fangjun", 1))
    assert refused.status_code == 409
    assert refused.json()["error"]["message"].startswith("already enrolled as voice ")
    assert register(speech.enroll("fangjun", 1), force=True).status_code == 200

    too_noisy = register(with_white_noise(speech.enroll("leijun", 1), 0.0))
    assert too_noisy.status_code == 422 and "too noisy" in too_noisy.json()["error"]["message"]


# --------------------------------------------------------------------------- samples


def test_samples_list_their_quality_and_agreement_and_an_outlier_can_go(api, speech, kitchen):
    voice_id = enroll(api, speech.enroll("fangjun", 1), kitchen)["voice_id"]
    add_sample(api, voice_id, speech.enroll("fangjun", 2))
    add_sample(api, voice_id, speech.enroll("leijun", 1), force="true")
    samples = envelope(api.get(VP + f"voices/{voice_id}/samples"))
    assert [s["sample"] for s in samples] == [0, 1, 2]
    assert {s["kind"] for s in samples} == {"enrollment"}
    assert all(s["speech_seconds"] > 1.5 and s["snr_db"] > 8 for s in samples)
    outlier = min(samples, key=lambda s: s["agreement"])
    assert outlier["sample"] == 2 and outlier["agreement"] < 0.75
    before = Voice.objects.get(voice_id=voice_id).centroid

    voice = envelope(api.delete(VP + f"voices/{voice_id}/samples/2"))
    assert voice["sample_count"] == 2
    assert not any("does not agree" in i for i in voice["enrollment"]["issues"])
    after = Voice.objects.get(voice_id=voice_id).centroid
    assert not np.allclose(before, after)
    remaining = envelope(api.get(VP + f"voices/{voice_id}/samples"))
    assert all(s["agreement"] > 0.75 for s in remaining)

    envelope(api.delete(VP + f"voices/{voice_id}/samples/5"), 40400)
    envelope(api.delete(VP + f"voices/{voice_id}/samples/x"), 40400)
    envelope(api.delete(VP + f"voices/{voice_id}/samples/1"))
    response = api.delete(VP + f"voices/{voice_id}/samples/0")
    envelope(response, 40900)
    assert "only enrollment sample" in response.json()["msg"]
    assert get_voice(api, voice_id)["sample_count"] == 1
