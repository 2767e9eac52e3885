"""POST voices/create: every audio form, the voice object, and every refusal (nothing stored)."""

from __future__ import annotations

import base64
from datetime import datetime

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.helpers import VP, envelope, voice_object
from tests.voiceprint.conftest import (
    DIM,
    ENGINE,
    clip,
    closed_port,
    create_device,
    create_role,
    default_role,
    enroll,
    nothing_stored,
    post_raw,
    read_wav,
    silence,
    verify,
)
from voiceprint.models import Voice
from voiceprint.thresholds import default_similarity_threshold

CREATE = VP + "voices/create"
DEV = "dev-a"
KB = 1024
MB = 1024 * KB
VOICE_FIELDS = {
    "voice_id", "voice_name", "voice_url", "status", "threshold", "role_bind", "dev_bind",
    "model", "sample_count", "enrollment", "consent", "created_at", "updated_at",
}  # fmt: skip


@pytest.fixture
def device(api) -> str:
    create_device(api, DEV, "kitchen")
    return DEV


def stored_audio(api, voice: dict) -> bytes:
    """GET the voice's voice_url (an absolute URL) with the tenant's token."""
    response = api.get(voice["voice_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    return b"".join(response.streaming_content)


def same_samples(wav_a: bytes, wav_b: bytes) -> bool:
    (a, rate_a), (b, rate_b) = read_wav(wav_a), read_wav(wav_b)
    return rate_a == rate_b and np.array_equal(a, b)


def is_iso_utc(value: str) -> bool:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ") is not None


def json_create(api, **body):
    return api.post(CREATE, body, format="json")


@pytest.mark.django_db
class TestCreateForms:
    @pytest.mark.parametrize(
        "content_type", ["audio/wav", "audio/x-wav", "application/octet-stream"]
    )
    def test_raw_body_with_header_parameters(self, api, speech, device, content_type):
        mom = create_role(api, "妈妈")
        response = api.post(
            CREATE,
            data=speech.enroll("fangjun"),
            content_type=content_type,
            HTTP_X_DEVICE_ID=DEV,
            HTTP_X_ROLE_ID=mom,
            HTTP_X_THRESHOLD="0.8",
            HTTP_X_VOICE_NAME="%E5%A6%88%E5%A6%88",
        )
        voice = envelope(response)
        assert voice["voice_name"] == "妈妈"
        assert voice["role_bind"] == {"role_id": mom, "role_name": "妈妈"}
        assert voice["threshold"] == 0.8
        assert voice["dev_bind"] == [{"device_id": DEV, "device_name": "kitchen"}]
        assert Voice.objects.get(voice_id=voice["voice_id"]).name == "妈妈"

    def test_voice_object_and_defaults(self, api, speech, device, media_root):
        audio = speech.enroll("fangjun")
        encoded = base64.b64encode(audio).decode()
        reply = envelope(json_create(api, audio_base64=encoded, device_id=DEV))
        assert set(reply) == VOICE_FIELDS | {"similar_voices"}
        voice = voice_object(reply)
        assert voice["voice_id"] and isinstance(voice["voice_id"], str)
        assert voice["voice_name"] == ""
        assert voice["status"] == "activate"
        assert voice["threshold"] == default_similarity_threshold(ENGINE)
        role = default_role(api)
        assert voice["role_bind"] == {"role_id": role["role_id"], "role_name": "default"}
        assert voice["dev_bind"] == [{"device_id": DEV, "device_name": "kitchen"}]
        assert voice["model"] == ENGINE
        assert voice["sample_count"] == 1
        assert is_iso_utc(voice["created_at"]) and is_iso_utc(voice["updated_at"])
        assert voice["voice_url"] == f"http://testserver{VP}voices/{voice['voice_id']}/audio"
        assert same_samples(stored_audio(api, voice), audio)
        row = Voice.objects.get(voice_id=voice["voice_id"])
        assert row.dim == DIM and len(row.centroid) == DIM
        # The audio lives under MEDIA_ROOT (the tmp folder of this test), encrypted.
        assert [p.suffixes for p in media_root.rglob("*") if p.is_file()] == [[".wav", ".enc"]]
        assert get_listed(api) == [voice]

    def test_base64_data_uri(self, api, speech, device):
        audio = speech.enroll("fangjun")
        uri = "data:audio/wav;base64," + base64.b64encode(audio).decode()
        voice = envelope(json_create(api, audio_base64=uri, device_id=DEV, voice_name="爸爸"))
        assert voice["voice_name"] == "爸爸"
        assert same_samples(stored_audio(api, voice), audio)

    def test_multipart_file_with_form_fields(self, api, speech, device):
        audio = speech.enroll("fangjun")
        dad = create_role(api, "爸爸")
        body = {
            "file": SimpleUploadedFile("me.wav", audio, content_type="audio/wav"),
            "device_id": DEV,
            "role_id": dad,
            "threshold": "0.7",
            "voice_name": "爸爸",
        }
        voice = envelope(api.post(CREATE, body, format="multipart"))
        assert voice["voice_name"] == "爸爸" and voice["threshold"] == 0.7
        assert voice["role_bind"] == {"role_id": dad, "role_name": "爸爸"}
        assert same_samples(stored_audio(api, voice), audio)

    def test_audio_url_is_fetched_following_redirects(self, api, speech, device, audio_server):
        audio = speech.enroll("fangjun")
        audio_server.serve("/fangjun.wav", audio)
        start = audio_server.serve("/start", b"", status=302, Location="/fangjun.wav")
        voice = envelope(json_create(api, audio_url=start, device_id=DEV))
        assert audio_server.requests == ["/start", "/fangjun.wav"]
        assert same_samples(stored_audio(api, voice), audio)

    def test_audio_url_header_wins_over_raw_body(self, api, speech, device, audio_server):
        url = audio_server.serve("/speaker1.wav", speech.held_out("speaker1_a_en"))
        voice = enroll(api, speech.held_out("speaker2_a_en"), DEV, audio_url=url)
        assert audio_server.requests == ["/speaker1.wav"]
        assert same_samples(stored_audio(api, voice), speech.held_out("speaker1_a_en"))
        # Held-out speakers: speaker1_b_en scores 0.86 against speaker1_a_en (threshold 0.75).
        assert verify(api, voice["voice_id"], speech.held_out("speaker1_b_en"))["verified"] is True

    def test_audio_url_wins_over_base64(self, api, speech, device, audio_server):
        url = audio_server.serve("/leijun.wav", speech.enroll("leijun"))
        encoded = base64.b64encode(speech.enroll("fangjun")).decode()
        voice = envelope(json_create(api, audio_url=url, audio_base64=encoded, device_id=DEV))
        assert same_samples(stored_audio(api, voice), speech.enroll("leijun"))


def get_listed(api) -> list[dict]:
    return envelope(api.get(VP + "voices"))


@pytest.mark.django_db
class TestCreateErrors:
    @pytest.mark.parametrize("form", ["raw", "json", "multipart", "empty_base64"])
    def test_no_audio_is_40001(self, api, device, media_root, form):
        requests = {
            "raw": lambda: post_raw(api, "voices/create", b"", device_id=DEV),
            "json": lambda: json_create(api, device_id=DEV),
            "multipart": lambda: api.post(CREATE, {"device_id": DEV}, format="multipart"),
            "empty_base64": lambda: json_create(api, device_id=DEV, audio_base64=""),
        }
        with nothing_stored(media_root):
            envelope(requests[form](), 40001)

    @pytest.mark.parametrize("cut", ["garbage", "header_cut", "header_only"])
    def test_undecodable_audio_is_40002(self, api, speech, device, media_root, cut):
        audio = {
            "garbage": b"this is not audio at all " * 40,
            "header_cut": speech.enroll("fangjun")[:30],
            "header_only": speech.enroll("fangjun")[:44],
        }[cut]
        with nothing_stored(media_root):
            envelope(post_raw(api, "voices/create", audio, device_id=DEV), 40002)

    @pytest.mark.parametrize("what", ["silence", "half_second_of_speech"])
    def test_too_little_speech_is_40003(self, api, speech, device, media_root, what):
        audio = silence(3.0) if what == "silence" else clip(speech.enroll("fangjun"), 0.5, 0.5)
        with nothing_stored(media_root):
            envelope(post_raw(api, "voices/create", audio, device_id=DEV), 40003)

    @pytest.mark.parametrize("content_type", ["audio/wav", "application/octet-stream"])
    def test_raw_body_over_512_kb_is_41300(self, api, speech, device, media_root, content_type):
        audio = speech.enroll("fangjun")
        big = audio + bytes(512 * KB + 1 - len(audio))
        with nothing_stored(media_root):
            response = post_raw(api, "voices/create", big, content_type, device_id=DEV)
            envelope(response, 41300)
        # Exactly 512 KB is accepted (the WAV with trailing padding).
        envelope(post_raw(api, "voices/create", big[:-1], content_type, device_id=DEV))

    def test_big_declared_content_length_is_refused_before_reading(
        self, api, speech, device, media_root
    ):
        # The test client's payload raises if more than the real body is read: 41300 (not
        # 50000) shows the declared length alone was refused.
        with nothing_stored(media_root):
            response = api.post(
                CREATE,
                data=speech.enroll("fangjun"),
                content_type="audio/wav",
                CONTENT_LENGTH=str(100 * MB),
                HTTP_X_DEVICE_ID=DEV,
            )
            envelope(response, 41300)

    def test_base64_over_10_mb_is_41300(self, api, device, media_root):
        encoded = base64.b64encode(bytes(10 * MB + 3)).decode()
        with nothing_stored(media_root):
            envelope(json_create(api, audio_base64=encoded, device_id=DEV), 41300)

    def test_base64_just_under_10_mb_is_read(self, api, device, media_root):
        # 10 MB decoded is allowed, i.e. a JSON body of about 13.4 MB: it must get as far
        # as decoding the audio (40002 for these zero bytes), not fail on the body size.
        encoded = base64.b64encode(bytes(10 * MB - 3)).decode()
        with nothing_stored(media_root):
            envelope(json_create(api, audio_base64=encoded, device_id=DEV), 40002)

    def test_multipart_file_over_10_mb_is_41300(self, api, device, media_root):
        upload = SimpleUploadedFile("big.wav", bytes(10 * MB + 1), content_type="audio/wav")
        with nothing_stored(media_root):
            response = api.post(CREATE, {"file": upload, "device_id": DEV}, format="multipart")
            envelope(response, 41300)

    @pytest.mark.parametrize(
        "value", ["!!! not base64 !!!", "data:audio/wav;base64,@@@@", "QUJD\x00RA=="]
    )
    def test_invalid_base64_is_40000(self, api, device, media_root, value):
        with nothing_stored(media_root):
            response = json_create(api, audio_base64=value, device_id=DEV)
            envelope(response, 40000)
            assert "audio_base64" in response.json()["msg"]

    @pytest.mark.parametrize(
        "body", [["not", "an", "object"], {"audio_base64": 123}, {"audio_url": ["x"]}]
    )
    def test_malformed_json_is_40000(self, api, device, media_root, body):
        if isinstance(body, dict):
            body = {**body, "device_id": DEV}
        with nothing_stored(media_root):
            envelope(api.post(CREATE, body, format="json"), 40000)

    def test_missing_device_id_is_40000(self, api, speech, device, media_root):
        audio = speech.enroll("fangjun")
        encoded = base64.b64encode(audio).decode()
        with nothing_stored(media_root):
            for response in (
                post_raw(api, "voices/create", audio),
                json_create(api, audio_base64=encoded),
            ):
                envelope(response, 40000)
                assert "device_id" in response.json()["msg"]

    def test_unknown_device_or_role_is_40400(self, api, speech, device, media_root):
        audio = speech.enroll("fangjun")
        with nothing_stored(media_root):
            envelope(post_raw(api, "voices/create", audio, device_id="nope"), 40400)
            response = post_raw(api, "voices/create", audio, device_id=DEV, role_id="nope")
            envelope(response, 40400)

    @pytest.mark.parametrize("threshold", [1.5, -0.1, "abc", "nan"])
    def test_invalid_threshold_is_40000(self, api, speech, device, media_root, threshold):
        audio = speech.enroll("fangjun")
        encoded = base64.b64encode(audio).decode()
        with nothing_stored(media_root):
            for response in (
                post_raw(api, "voices/create", audio, device_id=DEV, threshold=threshold),
                json_create(api, audio_base64=encoded, device_id=DEV, threshold=threshold),
            ):
                envelope(response, 40000)
                assert "threshold" in response.json()["msg"]

    def test_text_plain_is_40000(self, api, device, media_root):
        with nothing_stored(media_root):
            response = api.post(
                CREATE, data=b"hello", content_type="text/plain", HTTP_X_DEVICE_ID=DEV
            )
            envelope(response, 40000)

    def test_bad_percent_encoding_in_a_header_is_40000(self, api, speech, device, media_root):
        with nothing_stored(media_root):
            response = api.post(
                CREATE,
                data=speech.enroll("fangjun"),
                content_type="audio/wav",
                HTTP_X_DEVICE_ID=DEV,
                HTTP_X_VOICE_NAME="%E5%A6",  # a cut UTF-8 sequence
            )
            envelope(response, 40000)
            assert "voice_name" in response.json()["msg"]

    def test_full_device_is_40900(self, api, speech, device, media_root, settings):
        settings.VOICEPRINT_MAX_VOICES_PER_DEVICE = 1
        enroll(api, speech.enroll("fangjun"), DEV)
        with nothing_stored(media_root):
            response = post_raw(api, "voices/create", speech.enroll("leijun"), device_id=DEV)
            envelope(response, 40900)
        stats = envelope(api.get(VP + f"devices/{DEV}"))["stats"]
        assert stats["voice_count"] == 1


def refused(response) -> None:
    envelope(response, 40000)
    assert "audio_url" in response.json()["msg"]


@pytest.mark.django_db
class TestAudioUrlRefusals:
    """Refused URLs answer 40000 and no connection is made to the refused target."""

    def test_loopback_not_allow_listed(
        self, api, speech, device, media_root, audio_server, settings, connects
    ):
        settings.VOICEPRINT_URL_ALLOWLIST = ""
        url = audio_server.serve("/a.wav", speech.enroll("fangjun"))
        with nothing_stored(media_root):
            refused(json_create(api, audio_url=url, device_id=DEV))
            # The header form too, even with good audio in the body.
            refused(post_raw(api, "voices/create", speech.enroll("fangjun"), device_id=DEV,
                             audio_url=url))  # fmt: skip
        assert audio_server.requests == []
        assert ("127.0.0.1", audio_server.port) not in connects

    def test_other_loopback_address(
        self, api, speech, device, media_root, audio_server, forbidden_server, connects
    ):
        url = forbidden_server.serve("/a.wav", speech.enroll("fangjun"))
        with nothing_stored(media_root):
            refused(json_create(api, audio_url=url, device_id=DEV))
        assert forbidden_server.requests == []
        assert not [c for c in connects if c[0] == "127.0.0.2"]

    def test_redirect_to_a_refused_address(
        self, api, speech, device, media_root, audio_server, forbidden_server, connects
    ):
        target = forbidden_server.serve("/a.wav", speech.enroll("fangjun"))
        start = audio_server.serve("/start", b"", status=302, Location=target)
        with nothing_stored(media_root):
            refused(json_create(api, audio_url=start, device_id=DEV))
        assert audio_server.requests == ["/start"]
        assert forbidden_server.requests == []
        assert ("127.0.0.1", audio_server.port) in connects
        assert not [c for c in connects if c[0] == "127.0.0.2"]

    @pytest.mark.parametrize(
        "url", ["file:///etc/passwd", "ftp://127.0.0.1/a.wav", "gopher://127.0.0.1/"]
    )
    def test_other_schemes(self, api, device, media_root, audio_server, connects, url):
        with nothing_stored(media_root):
            refused(json_create(api, audio_url=url, device_id=DEV))
        assert connects == []

    @pytest.mark.parametrize("where", ["closed_port", "not_found"])
    def test_fetch_failure_is_50200(self, api, device, media_root, audio_server, where):
        url = {
            "closed_port": f"http://127.0.0.1:{closed_port()}/a.wav",
            "not_found": audio_server.url("/missing.wav"),
        }[where]
        with nothing_stored(media_root):
            envelope(json_create(api, audio_url=url, device_id=DEV), 50200)

    def test_url_over_10_mb_is_41300(self, api, device, media_root, audio_server):
        url = audio_server.serve("/big.wav", bytes(10 * MB + 1))
        with nothing_stored(media_root):
            envelope(json_create(api, audio_url=url, device_id=DEV), 41300)

    def test_unknown_device_costs_no_download(self, api, speech, media_root, audio_server):
        url = audio_server.serve("/a.wav", speech.enroll("fangjun"))
        with nothing_stored(media_root):
            envelope(json_create(api, audio_url=url, device_id="no-such-device"), 40400)
        assert audio_server.requests == []
