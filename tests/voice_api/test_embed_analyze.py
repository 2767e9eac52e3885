"""POST /v1/voice/embed and POST /v1/voice/analyze."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.attributes import (
    LABELS,
    GenderHead,
    HeadFileError,
    embed_labelled_files,
    file_speaker,
    fit_gender_head,
    read_gender_head,
    read_speaker_sexes,
)
from engine.evaluation import audio_files
from tests.conftest import require_shared
from tests.helpers import VP, check_quality, envelope
from tests.voice_api.conftest import (
    DIM,
    ENGINE,
    LIBRISPEECH,
    PROBE_SECONDS,
    b64,
    data_uri,
    error,
    ok,
    post,
    silence,
)
from voiceprint.voice_api import services as voice_services

INVALID, NO_AUDIO, UNDECODABLE, TOO_LITTLE_SPEECH = 40000, 40001, 40002, 40003
NOT_IMPLEMENTED, UNAVAILABLE = 50100, 50300
#: LibriSpeech utterances and the sex SPEAKERS.TXT gives their speaker (two of each).
KNOWN_SEX = ["118-121721-0000", "1034-121119-0000", "1183-124566-0000", "1088-129236-0000"]
#: Speakers of each sex the held-out head below is fitted on.
TRAINING_PER_SEX = 15

pytestmark = pytest.mark.django_db


def embed(api, audio: str, **fields) -> dict:
    return ok(post(api, "embed", {"audio": audio, **fields}))


def analyze(api, audio: bytes, **fields):
    return post(api, "analyze", {"audio": b64(audio), **fields})


# --------------------------------------------------------------------------- embed


def test_embed_is_a_unit_vector_of_the_engine(api, speech):
    reply = embed(api, b64(speech.speaker3d("speaker1_a_en")))
    assert set(reply) == {"embedding", "dim", "model", "quality"}
    check_quality(reply["quality"], recording_seconds=PROBE_SECONDS)
    assert reply["model"] == ENGINE and reply["dim"] == DIM
    vector = np.asarray(reply["embedding"], dtype=np.float64)
    assert vector.shape == (DIM,) and np.isfinite(vector).all()
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)


def test_embed_matches_features_extract(api, speech):
    audio = speech.speaker3d("speaker1_a_cn")
    voice_api = embed(api, b64(audio))
    voiceprint_api = envelope(
        api.post(VP + "features/extract", data=audio, content_type="audio/wav")
    )
    assert (voice_api["dim"], voice_api["model"]) == (
        voiceprint_api["dim"],
        voiceprint_api["model"],
    )
    np.testing.assert_allclose(voice_api["embedding"], voiceprint_api["embedding"], atol=1e-5)
    assert voice_api["quality"] == voiceprint_api["quality"]


def test_embed_is_the_same_for_every_audio_form(api, speech, audio_server):
    audio = speech.speaker3d("speaker1_b_cn")
    forms = [b64(audio), data_uri(audio), audio_server.serve("/b.wav", audio)]
    vectors = [embed(api, form)["embedding"] for form in forms]
    np.testing.assert_allclose(vectors[1], vectors[0], atol=1e-6)
    np.testing.assert_allclose(vectors[2], vectors[0], atol=1e-6)


def test_embed_with_the_model_named(api, speech, campplus_active):
    audio = speech.speaker3d("speaker1_a_en")
    default = embed(api, b64(audio))
    assert (default["model"], default["dim"]) == (campplus_active, len(default["embedding"]))
    named = embed(api, b64(audio), model=ENGINE)
    assert (named["model"], named["dim"]) == (ENGINE, DIM)
    expected = engine.get_engine(ENGINE).embed(engine.prepare_audio(audio).waveform)
    np.testing.assert_allclose(named["embedding"], expected, atol=1e-5)


def test_embed_with_an_engine_without_weights_is_503(api, speech):
    body = {"audio": b64(speech.speaker3d("speaker1_a_en")), "model": "eres2net"}
    response = post(api, "embed", body)
    error(response, 503, UNAVAILABLE)
    message = response.json()["error"]["message"]
    # Server paths and download steps stay in the server's log.
    assert "not installed" in message and "/" not in message and "download" not in message


def test_embed_of_silence_is_422(api):
    error(post(api, "embed", {"audio": b64(silence())}), 422, TOO_LITTLE_SPEECH)


def test_embed_of_garbage_is_415(api):
    error(post(api, "embed", {"audio": b64(b"\x00\x01garbage" * 500)}), 415, UNDECODABLE)


def test_embed_without_audio_is_400_no_audio(api):
    assert "audio" in error(post(api, "embed", {}), 400, NO_AUDIO)


# --------------------------------------------------------------------------- analyze


@pytest.fixture(scope="module")
def head_that_never_heard_them() -> GenderHead:
    """The shipped head was trained on every LibriSpeech speaker here, those of KNOWN_SEX
    too (README), so its answers for them are in-sample. This head is fitted by the same
    recipe on other speakers only: its answers for KNOWN_SEX are real predictions."""
    folder = require_shared(LIBRISPEECH)
    sexes = read_speaker_sexes(folder / "SPEAKERS.TXT")
    asked = {file_speaker(LIBRISPEECH / f"{utterance}.flac") for utterance in KNOWN_SEX}
    others = [f for f in audio_files(folder) if file_speaker(f) not in asked]
    chosen = [[f for f in others if sexes[file_speaker(f)] == sex][:TRAINING_PER_SEX]
              for sex in LABELS]  # fmt: skip
    data = embed_labelled_files(chosen[0] + chosen[1], sexes, ENGINE, progress=False)
    assert not asked & set(data.speakers) and len(set(data.speakers)) == 2 * TRAINING_PER_SEX
    return fit_gender_head(data.x, data.y, data.speakers, engine_name=ENGINE, folds=3)


#: Speaker 118, male in SPEAKERS.TXT, is called female (P(male) 0.002 to 0.02, measured) by
#: every head fitted without him, on 15, 30, 60 or all 247 other speakers: the shipped
#: head's 0.97 for him is memorised. Strict: should a head ever get him right, say so.
MISCALLED = pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="speaker 118 is called female out of sample"
)


@pytest.mark.parametrize(
    "utterance",
    [pytest.param(u, marks=MISCALLED) if u.startswith("118-") else u for u in KNOWN_SEX],
)
def test_gender_of_speakers_the_head_never_heard(
    api, speech, head_that_never_heard_them, monkeypatch, utterance
):
    head = head_that_never_heard_them
    monkeypatch.setattr(voice_services, "load_gender_head", lambda model: head)
    reply = ok(analyze(api, speech.librispeech(utterance), actions=["gender"]))
    gender = reply["gender"]
    assert set(gender) == {"label", "scores"}
    assert set(gender["scores"]) == {"female", "male"}
    assert sum(gender["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert gender["label"] == max(gender["scores"], key=gender["scores"].get)
    assert gender["label"] == speech.sex(utterance)


def test_gender_is_the_shipped_heads_answer(api, speech, gender_head):
    """The API answers with the shipped head on the live embedding (its accuracy on these
    training speakers would prove nothing: see head_that_never_heard_them)."""
    audio = speech.librispeech(KNOWN_SEX[0])
    gender = ok(analyze(api, audio, actions=["gender"]))["gender"]
    expected = read_gender_head(gender_head).predict(engine.embed_audio(audio, ENGINE).vector)
    assert gender["label"] == expected["label"]
    for label, score in expected["scores"].items():
        assert gender["scores"][label] == pytest.approx(score, abs=1e-5)


def test_only_the_asked_attribute_is_returned(api, speech, gender_head):
    reply = ok(analyze(api, speech.librispeech(KNOWN_SEX[0]), actions=["gender"]))
    assert set(reply) == {"gender", "model", "processing_time_ms"}
    assert reply["model"] == ENGINE
    assert isinstance(reply["processing_time_ms"], int) and reply["processing_time_ms"] >= 0


@pytest.mark.parametrize("actions", [..., [], None], ids=["omitted", "empty", "null"])
def test_no_actions_means_all_supported(api, speech, gender_head, no_classifiers, actions):
    body = {} if actions is ... else {"actions": actions}
    reply = ok(analyze(api, speech.librispeech(KNOWN_SEX[0]), **body))
    assert set(reply) == {"gender", "model", "processing_time_ms"}


def test_attributes_that_cannot_be_computed_are_left_out(api, speech, gender_head, no_classifiers):
    reply = ok(analyze(api, speech.librispeech(KNOWN_SEX[0]), actions=["age", "gender", "emotion"]))
    assert set(reply) == {"gender", "model", "processing_time_ms"}


@pytest.mark.parametrize("actions", [["emotion"], ["age"], ["age", "emotion"]])
def test_nothing_computable_is_501(api, speech, no_classifiers, actions):
    message = error(analyze(api, speech.librispeech(KNOWN_SEX[0]), actions=actions), 501, 50100)
    assert actions[0] in message


def test_gender_without_a_head_is_501(api, speech, monkeypatch):
    monkeypatch.setattr(voice_services, "load_gender_head", lambda model: None)
    error(analyze(api, speech.librispeech(KNOWN_SEX[0]), actions=["gender"]), 501, NOT_IMPLEMENTED)


def test_a_head_that_fails_to_load_degrades_to_501(api, speech, monkeypatch, no_classifiers):
    """Seed: a head that fails to load leaves out its attribute; nothing left is 501."""

    def broken(model):
        raise HeadFileError("corrupt gender head engine/heads/gender-ge2e.json")

    monkeypatch.setattr(voice_services, "load_gender_head", broken)
    response = analyze(api, speech.librispeech(KNOWN_SEX[0]), actions=["gender"])
    error(response, 501, NOT_IMPLEMENTED)


@pytest.mark.parametrize("actions", [["height"], ["gender", "mood"], "gender", [["gender"]]])
def test_invalid_actions_are_400(api, speech, actions):
    response = analyze(api, speech.librispeech(KNOWN_SEX[0]), actions=actions)
    assert "actions" in error(response, 400, INVALID)


def test_analyze_with_an_engine_without_weights_is_503(api, speech):
    response = analyze(api, speech.librispeech(KNOWN_SEX[0]), model="eres2net")
    error(response, 503, UNAVAILABLE)


def test_analyze_of_silence_is_422(api):
    error(analyze(api, silence()), 422, TOO_LITTLE_SPEECH)
