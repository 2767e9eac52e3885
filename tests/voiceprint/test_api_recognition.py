"""verify (1:1), identify (1:N) on real speech, engine mismatch, features/extract."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from devices.models import Device
from engine.scoring import load_scorer
from tests import factories as make
from tests.helpers import VP, check_quality, envelope
from tests.voiceprint.conftest import (
    DIM,
    ENGINE,
    SPEAKERS,
    create_device,
    create_role,
    device_stats,
    enroll,
    enroll_speaker,
    get_voice,
    identify,
    nothing_stored,
    post_raw,
    silence,
    threshold_above,
    update,
    verify,
)
from voiceprint import services
from voiceprint.models import Voice
from voiceprint.thresholds import default_similarity_threshold

A, B = "dev-a", "dev-b"
AGENT = "agent_001"
VERIFY_FIELDS = {
    "voice_id", "score", "threshold", "verified", "decision", "probability", "model",
    "processing_time_ms", "quality",
}  # fmt: skip
IDENTIFY_FIELDS = {
    "matched", "voice_id", "voice_name", "role_id", "role_name", "score", "threshold",
    "decision", "probability", "interrupt", "candidates", "model", "processing_time_ms", "quality",
}  # fmt: skip


@pytest.fixture
def fangjun(api, speech) -> dict:
    create_device(api, A)
    return enroll(api, speech.enroll("fangjun"), A, voice_name="fangjun")


def boundary_threshold_verify(voice_id: str, audio: bytes) -> float:
    """The least threshold `verify` refuses `audio` at, by the rule in force (the next float
    above the unrounded cosine, or the z equivalent with a scorer): the float just below it
    is the last accepted. Asserted to be the same on a second run."""
    voice = Voice.objects.get(voice_id=voice_id)
    first, second = (services.voice_verify(voice, audio=audio) for _ in range(2))
    assert first.score == second.score, "the engine must embed the same audio the same way"
    scorer = load_scorer(voice.engine_name)
    return threshold_above(first.score, scorer, snr_db=first.quality.snr_db)


def boundary_threshold_identify(tenant, device_id: str, audio: bytes) -> float:
    """As `boundary_threshold_verify` for the best candidate of `identify` (the device's
    stats count these runs too)."""
    device = Device.objects.get(tenant=tenant, device_id=device_id)
    first, second = (
        services.voice_identify(tenant, device=device, audio=audio, agent_id=None, top_k=1)
        for _ in range(2)
    )
    assert first.best == second.best, "the engine must embed the same audio the same way"
    scorer = load_scorer(first.best.voice.engine_name)
    return threshold_above(first.best, scorer, snr_db=first.quality.snr_db)


def check_candidates(result: dict) -> None:
    """Candidates best first (by cosine under the raw rule, by probability with a scorer),
    and the decision consistent with `matched`."""
    candidates = result["candidates"]
    calibrated = any(c["probability"] is not None for c in candidates)
    order = [c["probability"] if calibrated else c["score"] for c in candidates]
    assert order == sorted(order, reverse=True)
    assert all(set(c) == {"voice_id", "voice_name", "score", "probability"} for c in candidates)
    assert all((c["probability"] is None) is not calibrated for c in candidates)
    if candidates:
        assert (result["score"], result["probability"]) == (
            candidates[0]["score"],
            candidates[0]["probability"],
        )
    assert result["decision"] in ("match", "no_match", "uncertain")
    assert result["matched"] is (result["decision"] == "match")


# --------------------------------------------------------------------------- verify


@pytest.mark.django_db
class TestVerify:
    @pytest.mark.parametrize("language", ["en", "cn"])
    def test_same_speaker_is_verified(self, api, speech, language):
        # Held-out speakers (tests/conftest.py HELD_OUT_AUDIO). Measured with ge2e: 0.86 (en)
        # and 0.79 (cn) against the default 0.75: the cn pair clears it by 0.04 only.
        create_device(api, A)
        voice = enroll(api, speech.held_out(f"speaker1_a_{language}"), A, voice_name="s1")
        result = verify(api, voice["voice_id"], speech.held_out(f"speaker1_b_{language}"))
        assert set(result) == VERIFY_FIELDS
        assert result["voice_id"] == voice["voice_id"]
        assert result["threshold"] == voice["threshold"] == default_similarity_threshold(ENGINE)
        assert result["verified"] is True and result["score"] >= result["threshold"]
        assert result["decision"] == "match"
        assert result["model"] == ENGINE
        assert isinstance(result["processing_time_ms"], int) and result["processing_time_ms"] >= 0

    @pytest.mark.parametrize("language", ["en", "cn"])
    def test_different_speaker_is_not_verified(self, api, speech, language):
        # Held-out speakers; measured with ge2e: 0.55 (en), 0.53 (cn) against 0.75.
        create_device(api, A)
        voice = enroll(api, speech.held_out(f"speaker1_a_{language}"), A, voice_name="s1")
        result = verify(api, voice["voice_id"], speech.held_out(f"speaker2_a_{language}"))
        assert result["threshold"] == default_similarity_threshold(ENGINE)
        assert result["verified"] is False and result["score"] < result["threshold"]
        assert result["decision"] in ("no_match", "uncertain")

    def test_a_score_exactly_on_the_threshold_is_verified(self, api, speech):
        """`verified` is the score reaching the threshold: the voice's threshold is set to the
        last one the service accepts (computed from its unrounded score, not read from the
        rounded reply), then to the next float above it. The probe is
        another speaker's, so that the boundary lies inside 0-1 with a scorer too (a genuine
        probe's normalised score can exceed the z of a cosine threshold of 1)."""
        create_device(api, A)
        voice_id = enroll(api, speech.held_out("speaker1_a_en"), A)["voice_id"]
        probe = speech.held_out("speaker2_a_en")
        refused = boundary_threshold_verify(voice_id, probe)
        on_threshold = math.nextafter(refused, -math.inf)
        update(api, voice_id, {"threshold": on_threshold})
        on = verify(api, voice_id, probe)
        assert on["threshold"] == on_threshold and on["verified"] is True
        assert on["decision"] == "match"
        update(api, voice_id, {"threshold": refused})
        off = verify(api, voice_id, probe)
        assert off["verified"] is False and off["decision"] != "match"

    def test_the_voice_threshold_decides(self, api, speech, fangjun):
        voice_id = fangjun["voice_id"]
        update(api, voice_id, {"threshold": 0.0})
        stranger = verify(api, voice_id, speech.test("leijun", 1))
        assert stranger["threshold"] == 0.0 and stranger["verified"] is True
        update(api, voice_id, {"threshold": 1.0})
        assert verify(api, voice_id, speech.test("fangjun", 1))["verified"] is False

    @pytest.mark.parametrize("form", ["base64", "data_uri", "multipart", "url"])
    def test_every_audio_form(self, api, speech, fangjun, audio_server, form):
        audio = speech.test("fangjun", 1)
        encoded = base64.b64encode(audio).decode()
        body, fmt = {
            "base64": ({"audio_base64": encoded}, "json"),
            "data_uri": ({"audio_base64": "data:audio/wav;base64," + encoded}, "json"),
            "multipart": ({"file": SimpleUploadedFile("t.wav", audio, "audio/wav")}, "multipart"),
            "url": ({"audio_url": audio_server.serve("/t.wav", audio)}, "json"),
        }[form]
        path = VP + f"voices/{fangjun['voice_id']}/verify"
        result = envelope(api.post(path, body, format=fmt))
        raw = verify(api, fangjun["voice_id"], audio)
        assert {**result, "processing_time_ms": 0} == {**raw, "processing_time_ms": 0}

    def test_errors(self, api, fangjun):
        path = f"voices/{fangjun['voice_id']}/verify"
        envelope(post_raw(api, path, b""), 40001)
        envelope(api.post(VP + path, {}, format="json"), 40001)
        envelope(post_raw(api, path, b"garbage" * 50), 40002)
        envelope(post_raw(api, path, silence(3.0)), 40003)
        envelope(post_raw(api, "voices/nope/verify", silence(3.0)), 40400)


# --------------------------------------------------------------------------- identify


#: The zh files the galleries below are made of are those the default threshold was chosen
#: on, so tests on them check the flow (which voice, role, interrupt, counts), and require
#: each decision to clear the threshold by this much (measured with ge2e: speakers' own
#: scores 0.78 to 0.90, others at most 0.67, against 0.75; the 0.78 is fangjun-test-sr-2,
#: 2.2 s, which scored 0.83 before speech was levelled to -25 dBFS instead of -30, the
#: others moved by 0.015 at most). Decisions on speakers the threshold never saw:
#: TestIdentify.test_held_out_speakers_at_the_default_threshold.
IN_SAMPLE_MARGIN = 0.025


@pytest.fixture
def galleries(api, speech) -> dict:
    """Device A: fangjun (role 妈妈, may not interrupt AGENT), leijun (role 爸爸, no setting)
    and liudehua (default role), each from all their enroll/ files. Device B: only fangjun
    and leijun, enrolled again as voices of their own."""
    create_device(api, A)
    create_device(api, B)
    mom, dad = create_role(api, "妈妈"), create_role(api, "爸爸")
    body = {"roleinterrupt": [{"role_id": mom, "interrupt": "false"}]}
    envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"))
    roles = {"fangjun": mom, "leijun": dad, "liudehua": None}
    on_a = {s: enroll_speaker(api, speech, s, A, role_id=roles[s]) for s in SPEAKERS}
    on_b = {s: enroll_speaker(api, speech, s, B) for s in ("fangjun", "leijun")}
    assert [v["sample_count"] for v in on_a.values()] == [3, 2, 2]
    return {"A": on_a, "B": on_b, "mom": mom, "dad": dad}


@pytest.mark.django_db
class TestIdentify:
    def test_every_test_file_is_identified_as_its_speaker(self, api, speech, galleries):
        on_a = galleries["A"]
        expected_interrupt = {"fangjun": "false", "leijun": "true", "liudehua": "true"}
        count = 0
        for speaker in SPEAKERS:
            voice = on_a[speaker]
            for name, audio in speech.test_files(speaker):
                result = identify(api, audio, A, agent_id=AGENT)
                assert set(result) == IDENTIFY_FIELDS
                assert result["matched"] is True, (name, result)
                assert result["voice_id"] == voice["voice_id"], (name, result)
                assert result["voice_name"] == speaker
                assert result["role_id"] == voice["role_bind"]["role_id"]
                assert result["role_name"] == voice["role_bind"]["role_name"]
                assert result["threshold"] == voice["threshold"]
                assert result["score"] >= result["threshold"] + IN_SAMPLE_MARGIN, name
                assert result["interrupt"] == expected_interrupt[speaker]
                assert result["model"] == ENGINE
                assert len(result["candidates"]) == 3  # default top_k, three voices on A
                assert result["candidates"][0]["voice_id"] == voice["voice_id"]
                check_candidates(result)
                count += 1
        assert count == 7
        stats = device_stats(api, A)
        assert stats["identify_count"] == stats["matched_count"] == count
        assert stats["last_identify_at"].endswith("Z")

    def test_an_impostor_is_not_matched(self, api, speech, galleries):
        on_b = {v["voice_id"] for v in galleries["B"].values()}
        for name, audio in speech.test_files("liudehua"):
            result = identify(api, audio, B, agent_id=AGENT)
            assert result["matched"] is False, (name, result)
            assert result["voice_id"] is result["voice_name"] is None
            assert result["role_id"] is result["role_name"] is None
            assert result["interrupt"] == "false"
            assert result["score"] <= result["threshold"] - IN_SAMPLE_MARGIN, name
            assert {c["voice_id"] for c in result["candidates"]} == on_b
            check_candidates(result)
        # Only B's voices are candidates on B: fangjun is B's fangjun, not A's.
        genuine = identify(api, speech.test("fangjun", 1), B)
        assert genuine["voice_id"] == galleries["B"]["fangjun"]["voice_id"]
        assert genuine["interrupt"] is None  # no agent_id
        stats = device_stats(api, B)
        assert (stats["identify_count"], stats["matched_count"]) == (3, 1)
        assert device_stats(api, A)["identify_count"] == 0

    def test_held_out_speakers_at_the_default_threshold(self, api, speech):
        # Measured with ge2e (the default threshold: 0.75): speaker1_b_en scores 0.86 against
        # speaker1_a_en and 0.58 against speaker2_a_en; speaker2_a_cn 0.55 against speaker1.
        create_device(api, A)
        create_device(api, B)
        one = enroll(api, speech.held_out("speaker1_a_en"), A, voice_name="speaker1")
        two = enroll(api, speech.held_out("speaker2_a_en"), A, voice_name="speaker2")
        enroll(api, speech.held_out("speaker1_a_en"), B, voice_name="speaker1")
        found = identify(api, speech.held_out("speaker1_b_en"), A)
        assert (found["matched"], found["voice_id"]) == (True, one["voice_id"])
        assert found["candidates"][1]["voice_id"] == two["voice_id"]
        assert found["candidates"][1]["score"] < found["threshold"]
        stranger = identify(api, speech.held_out("speaker2_a_cn"), B)
        assert stranger["matched"] is False and stranger["voice_id"] is None
        assert stranger["score"] < stranger["threshold"] == default_similarity_threshold(ENGINE)

    def test_a_score_exactly_on_the_threshold_matches(self, api, speech, tenant):
        """`matched` is the score reaching the threshold: the voice's threshold is set to the
        last one the service accepts, then to the next float above it. The probe is
        another speaker's, so that the boundary lies inside 0-1 with a scorer too (a genuine
        probe's normalised score can exceed the z of a cosine threshold of 1)."""
        create_device(api, A)
        voice_id = enroll(api, speech.held_out("speaker1_a_en"), A)["voice_id"]
        probe = speech.held_out("speaker2_a_en")
        refused = boundary_threshold_identify(tenant, A, probe)
        on_threshold = math.nextafter(refused, -math.inf)
        update(api, voice_id, {"threshold": on_threshold})
        on = identify(api, probe, A)
        assert (on["matched"], on["voice_id"], on["threshold"]) == (True, voice_id, on_threshold)
        update(api, voice_id, {"threshold": refused})
        off = identify(api, probe, A)
        assert (off["matched"], off["voice_id"]) == (False, None)

    def test_top_k_limits_the_candidates(self, api, speech, galleries):
        audio = speech.test("leijun", 1)
        for top_k, expected in ((1, 1), (2, 2), (50, 3)):
            result = identify(api, audio, A, top_k=top_k)  # the X-Top-K header
            assert len(result["candidates"]) == expected
            check_candidates(result)
            encoded = base64.b64encode(audio).decode()
            body = {"audio_base64": encoded, "device_id": A, "top_k": top_k}
            as_json = envelope(api.post(VP + "voices/identify", body, format="json"))
            assert as_json["candidates"] == result["candidates"]
        assert result["voice_id"] == galleries["A"]["leijun"]["voice_id"]

    def test_interrupt_follows_the_role_setting(self, api, speech, galleries):
        fangjun = galleries["A"]["fangjun"]["voice_id"]
        audio = speech.test("fangjun", 1)
        assert identify(api, audio, A, agent_id=AGENT)["interrupt"] == "false"
        assert identify(api, audio, A, agent_id="agent_002")["interrupt"] == "true"
        assert identify(api, audio, A)["interrupt"] is None
        body = {"roleinterrupt": [{"role_id": galleries["mom"], "interrupt": "true"}]}
        envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"))
        assert identify(api, audio, A, agent_id=AGENT)["interrupt"] == "true"
        update(api, fangjun, {"role_bind": {"role_id": galleries["dad"]}})
        result = identify(api, audio, A, agent_id=AGENT)
        assert (result["role_name"], result["interrupt"]) == ("爸爸", "true")

    def test_a_device_without_voices(self, api, speech):
        create_device(api, A)
        result = identify(api, speech.test("fangjun", 1), A, agent_id=AGENT)
        assert result["matched"] is False and result["candidates"] == []
        assert result["voice_id"] is result["score"] is result["threshold"] is None
        assert (result["decision"], result["probability"]) == ("no_match", None)
        assert result["interrupt"] == "false"
        stats = device_stats(api, A)
        assert (stats["identify_count"], stats["matched_count"]) == (1, 0)

    def test_errors(self, api, speech):
        create_device(api, A)
        audio = speech.test("fangjun", 1)
        encoded = base64.b64encode(audio).decode()
        envelope(identify_raw(api, audio, device_id="nope"), 40400)
        response = identify_raw(api, audio)
        envelope(response, 40000)
        assert "device_id" in response.json()["msg"]
        envelope(api.post(VP + "voices/identify", {"audio_base64": encoded}, format="json"), 40000)
        envelope(identify_raw(api, b"", device_id=A), 40001)
        envelope(api.post(VP + "voices/identify", {"device_id": A}, format="json"), 40001)
        for top_k in (0, -1, 51, "x"):
            response = identify_raw(api, audio, device_id=A, top_k=top_k)
            envelope(response, 40000)
            assert "top_k" in response.json()["msg"]
        envelope(identify_raw(api, silence(3.0), device_id=A), 40003)
        stats = device_stats(api, A)
        assert (stats["identify_count"], stats["last_identify_at"]) == (0, None)


@pytest.mark.django_db
class TestDecision:
    """`decision` and `probability` of identify and verify: `matched`/`verified` is exactly
    decision == "match"; an uncertain speaker interrupts as its agent's setting says."""

    def test_verify_and_identify_carry_a_decision_consistent_with_matched(self, api, speech):
        create_device(api, A)
        voice = enroll(api, speech.held_out("speaker1_a_en"), A, voice_name="s1")
        calibrated = load_scorer(ENGINE) is not None
        for stem in ("speaker1_b_en", "speaker1_b_cn", "speaker2_a_en", "speaker2_a_cn"):
            probe = speech.held_out(stem)
            verified = verify(api, voice["voice_id"], probe)
            identified = identify(api, probe, A)
            assert verified["decision"] in ("match", "no_match", "uncertain"), stem
            assert verified["verified"] is (verified["decision"] == "match"), stem
            assert (verified["probability"] is not None) is calibrated
            if calibrated:
                assert 0.0 <= verified["probability"] <= 1.0
            check_candidates(identified)
            # One voice on the device: identify and verify decide alike.
            assert identified["decision"] == verified["decision"], stem
            assert identified["probability"] == verified["probability"], stem

    @pytest.mark.parametrize("stranger", ["speaker2_a_en", "speaker2_a_cn"])
    def test_a_strangers_probe_is_not_matched(self, api, speech, stranger):
        create_device(api, A)
        enroll(api, speech.held_out("speaker1_a_en"), A, voice_name="speaker1")
        enroll(api, speech.held_out("speaker1_a_cn"), A, voice_name="speaker1 (cn)")
        result = identify(api, speech.held_out(stranger), A, agent_id=AGENT)
        assert result["decision"] in ("no_match", "uncertain")
        assert result["matched"] is False
        assert result["voice_id"] is result["voice_name"] is result["role_id"] is None
        check_candidates(result)

    def test_an_uncertain_speaker_interrupts_as_the_agent_allows(self, api, speech):
        """Two voices enrolled from the very same recording on one device are too close to
        tell apart: a probe of that speaker is "uncertain", and its interrupt is the agent's
        uncertain_interrupt, not a role's."""
        if load_scorer(ENGINE) is None:
            pytest.skip(
                f"no cohort/calibration shipped for {ENGINE} (engine/heads): the raw cosine "
                "rule never answers uncertain"
            )
        create_device(api, A)
        role = create_role(api, "guest")
        for name in ("speaker1", "speaker1 twin"):
            enroll(api, speech.held_out("speaker1_a_en"), A, voice_name=name, role_id=role)
        body = {"roleinterrupt": [{"role_id": role, "interrupt": "false"}],
                "uncertain_interrupt": "true"}  # fmt: skip
        envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"))
        probe = speech.held_out("speaker1_b_en")

        result = identify(api, probe, A, agent_id=AGENT)

        assert (result["decision"], result["matched"]) == ("uncertain", False)
        assert result["voice_id"] is result["role_id"] is None
        assert result["interrupt"] == "true"  # the agent's setting, not the role's "false"
        assert identify(api, probe, A, agent_id="agent_002")["interrupt"] == "false"
        assert identify(api, probe, A)["interrupt"] is None
        check_candidates(result)


def identify_raw(api, audio: bytes, **params):
    return post_raw(api, "voices/identify", audio, **params)


# --------------------------------------------------------------------------- engines


@pytest.mark.django_db
class TestEngineMismatch:
    def test_verify_and_samples_refuse_a_voice_of_another_engine(
        self, api, speech, fangjun, media_root
    ):
        voice_id = fangjun["voice_id"]
        Voice.objects.filter(voice_id=voice_id).update(engine_name="eres2net")
        for path, audio in (("verify", speech.test("fangjun", 1)),
                            ("samples", speech.enroll("fangjun", 2))):  # fmt: skip
            with nothing_stored(media_root):
                response = post_raw(api, f"voices/{voice_id}/{path}", audio)
                envelope(response, 40900)
            assert "reembed" in response.json()["msg"]
        assert get_voice(api, voice_id)["sample_count"] == 1

    def test_identify_on_a_device_of_another_engine_only(self, api, speech, fangjun):
        Voice.objects.filter(voice_id=fangjun["voice_id"]).update(engine_name="eres2net")
        response = identify_raw(api, speech.test("fangjun", 1), device_id=A)
        envelope(response, 40900)
        assert "reembed" in response.json()["msg"]
        assert device_stats(api, A)["identify_count"] == 0

    def test_identify_compares_only_voices_of_the_active_engine(self, api, speech, fangjun):
        leijun = enroll(api, speech.enroll("leijun"), A)
        Voice.objects.filter(voice_id=fangjun["voice_id"]).update(engine_name="eres2net")
        result = identify(api, speech.test("fangjun", 1), A)
        assert [c["voice_id"] for c in result["candidates"]] == [leijun["voice_id"]]
        assert result["voice_id"] in (None, leijun["voice_id"])


# --------------------------------------------------------------------------- extract


@pytest.mark.django_db
class TestExtract:
    def test_embedding(self, api, speech):
        audio = speech.test("fangjun", 1)
        result = envelope(post_raw(api, "features/extract", audio))
        assert set(result) == {"embedding", "dim", "model", "quality"}
        assert result["dim"] == DIM == len(result["embedding"])
        assert result["model"] == ENGINE
        assert np.linalg.norm(result["embedding"]) == pytest.approx(1.0, abs=1e-3)
        encoded = base64.b64encode(audio).decode()
        as_json = envelope(api.post(VP + "features/extract", {"audio_base64": encoded},
                                    format="json"))  # fmt: skip
        assert as_json == result

    def test_errors(self, api):
        envelope(post_raw(api, "features/extract", b""), 40001)
        envelope(api.post(VP + "features/extract", {}, format="json"), 40001)
        envelope(post_raw(api, "features/extract", b"garbage" * 50), 40002)
        envelope(post_raw(api, "features/extract", silence(3.0)), 40003)


# --------------------------------------------------------------------------- quality


@pytest.mark.django_db
class TestQuality:
    """verify, identify and extract carry the probe's quality: speech, SNR, clipping."""

    def test_each_reply_carries_the_quality_of_the_probe(self, api, speech):
        create_device(api, A)
        voice = enroll(api, speech.held_out("speaker1_a_en"), A)
        probe = speech.held_out("speaker1_b_en")

        verified = verify(api, voice["voice_id"], probe)["quality"]
        identified = identify(api, probe, A)["quality"]
        extracted = envelope(post_raw(api, "features/extract", probe))["quality"]

        assert verified == identified == extracted  # one probe, one measure
        quality = check_quality(verified, recording_seconds=make.seconds_of(probe))
        assert quality["snr_db"] > 15.0 and quality["clipping"] < 1e-3  # a clean recording

    def test_a_noisier_probe_reports_a_lower_snr(self, api, speech):
        """The same probe with three LibriSpeech talkers over it at 10 dB, then at 0 dB."""
        create_device(api, A)
        clean = speech.held_out("speaker1_b_en")
        probes = [clean, make.with_babble(clean, 10.0), make.with_babble(clean, 0.0)]

        snrs = [identify(api, probe, A)["quality"]["snr_db"] for probe in probes]

        assert snrs[0] > snrs[1] > snrs[2], snrs

    def test_an_overdriven_probe_reports_clipping(self, api, speech):
        samples, rate = make.decode(speech.held_out("speaker1_b_en"))
        overdriven = make.wav(np.clip(samples * 20.0, -1.0, 1.0), rate)

        quality = envelope(post_raw(api, "features/extract", overdriven))["quality"]

        assert quality["clipping"] > 0.05
