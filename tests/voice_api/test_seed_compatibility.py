"""A client written only from the seed document (seed_client.py), unchanged, against a live
server: the register -> identify -> forget workflow, then verify, embed and analyze."""

from __future__ import annotations

import pytest

import engine
from engine.attributes import read_gender_head
from tests.voice_api.conftest import ENGINE, GENDER_HEAD, ZH_SPEAKERS
from tests.voice_api.seed_client import SeedVoiceClient, VoiceAPIError, data_uri, raw_base64

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def seed(live_server, tenant_and_token) -> SeedVoiceClient:
    return SeedVoiceClient(live_server.url, tenant_and_token[1])


def test_register_identify_forget_workflow(seed, speech, audio_server):
    ids = {
        speaker: seed.register(
            data_uri(speech.enroll(speaker)), speaker, labels={"speaker": speaker}, store="compat"
        )["id"]
        for speaker in ZH_SPEAKERS
    }
    for speaker in ZH_SPEAKERS:
        top = seed.identify(raw_base64(speech.zh_tests(speaker)[0][1]), store="compat")[0]
        assert (top["id"], top["name"], top["labels"]) == (
            ids[speaker],
            speaker,
            {"speaker": speaker},
        )
        assert top["match"] is True

    probe_url = audio_server.serve("/probe.wav", speech.zh_tests("fangjun")[1][1])
    matches = seed.identify(probe_url, top_k=2, threshold=0.3, store="compat")
    assert len(matches) == 2 and matches[0]["id"] == ids["fangjun"]

    seed.forget(ids["fangjun"])
    after = seed.identify(probe_url, store="compat")
    assert ids["fangjun"] not in {m["id"] for m in after}
    assert not any(m["match"] for m in after)
    for gone in (ids["fangjun"], "no-such-voice-id"):
        with pytest.raises(VoiceAPIError) as refused:
            seed.forget(gone)
        assert refused.value.status == 404


def test_verify_embed_and_analyze(seed, speech, audio_server, no_classifiers):
    first = raw_base64(speech.speaker3d("speaker1_a_en"))
    same = data_uri(speech.speaker3d("speaker1_b_en"))
    other = audio_server.serve("/speaker2.wav", speech.speaker3d("speaker2_a_en"))
    assert seed.verify(first, same)["verified"] is True
    assert seed.verify(first, other)["verified"] is False
    assert seed.verify(first, same, threshold=0.01)["verified"] is False

    embedded = seed.embed(other)
    assert embedded["dim"] == len(embedded["embedding"])

    # The shipped head's answer (it was trained on this speaker, so whether that answer is
    # right proves nothing here: test_embed_analyze asks heads that never heard them).
    libri = speech.librispeech("118-121721-0000")
    vector = engine.embed_audio(libri, ENGINE).vector
    shipped = read_gender_head(GENDER_HEAD).predict(vector)["label"]
    assert seed.analyze(raw_base64(libri), actions=["gender"])["gender"]["label"] == shipped
    assert "gender" in seed.analyze(raw_base64(libri))
    with pytest.raises(VoiceAPIError) as nothing:  # no emotion checkpoint (no_classifiers)
        seed.analyze(raw_base64(libri), actions=["emotion"])
    assert nothing.value.status == 501
