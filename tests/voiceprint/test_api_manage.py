"""GET/PUT/DELETE voices, PUT voicesbind, samples and the audio of each sample."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import stored_files
from tests.helpers import VP, envelope
from tests.voiceprint.conftest import (
    ENGINE,
    add_sample,
    create_device,
    create_role,
    default_role,
    device_stats,
    enroll,
    get_voice,
    nothing_stored,
    post_raw,
    read_wav,
    silence,
    update,
    verify,
)
from voiceprint.models import Voice, VoiceBinding, VoiceSample
from voiceprint.thresholds import default_similarity_threshold

A, B, C = "dev-a", "dev-b", "dev-c"
BOTH_PATHS = pytest.mark.parametrize("path", ["voices", "voicesbind"])


@pytest.fixture
def voice(api, speech) -> dict:
    """fangjun's first recording, enrolled on device A with the default role."""
    create_device(api, A, "kitchen")
    return enroll(api, speech.enroll("fangjun"), A, voice_name="fangjun")


def listed(api, **filters) -> list[str]:
    return [v["voice_id"] for v in envelope(api.get(VP + "voices", filters))]


def device_voices(api, device_id: str) -> list[str]:
    return envelope(api.get(VP + f"devices/{device_id}"))["voices"]


def audio_of(api, voice_id: str, sample: str | None = None):
    query = {} if sample is None else {"sample": sample}
    return api.get(VP + f"voices/{voice_id}/audio", query)


def samples_of(response) -> np.ndarray:
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    return read_wav(b"".join(response.streaming_content))[0]


@pytest.mark.django_db
class TestListAndGet:
    def test_list_filters_and_get(self, api, speech):
        create_device(api, A)
        create_device(api, B)
        mom = create_role(api, "妈妈")
        first = enroll(api, speech.enroll("fangjun"), A, role_id=mom)
        second = enroll(api, speech.enroll("leijun"), B)
        one, two = first["voice_id"], second["voice_id"]
        default = default_role(api)["role_id"]

        assert listed(api) == [one, two]
        assert listed(api, device_id=A) == [one]
        assert listed(api, device_id=B) == [two]
        assert listed(api, role_id=mom) == [one]
        assert listed(api, role_id=default) == [two]
        assert listed(api, device_id=A, role_id=default) == []
        assert listed(api, device_id="nope") == []
        assert listed(api, role_id="nope") == []
        assert envelope(api.get(VP + "voices")) == [first, second]
        assert get_voice(api, one) == first

    def test_unknown_voice_is_40400(self, api):
        envelope(api.get(VP + "voices/nope"), 40400)
        envelope(api.put(VP + "voices/nope", {"threshold": 0.5}, format="json"), 40400)
        envelope(api.put(VP + "voicesbind/nope", {"threshold": 0.5}, format="json"), 40400)
        envelope(api.delete(VP + "voices/nope"), 40400)
        envelope(audio_of(api, "nope"), 40400)
        envelope(post_raw(api, "voices/nope/samples", silence(1.0)), 40400)
        envelope(post_raw(api, "voices/nope/verify", silence(1.0)), 40400)


@pytest.mark.django_db
class TestUpdate:
    @BOTH_PATHS
    def test_threshold_and_reset_to_default(self, api, voice, path):
        voice_id = voice["voice_id"]
        assert update(api, voice_id, {"threshold": 0.9}, path) is None
        assert get_voice(api, voice_id)["threshold"] == 0.9
        update(api, voice_id, {"threshold": None}, path)
        assert get_voice(api, voice_id)["threshold"] == default_similarity_threshold(ENGINE)

    @BOTH_PATHS
    def test_role_bind_and_unbind(self, api, voice, path):
        voice_id, mom = voice["voice_id"], create_role(api, "妈妈")
        update(api, voice_id, {"role_bind": {"role_id": mom}}, path)
        assert get_voice(api, voice_id)["role_bind"] == {"role_id": mom, "role_name": "妈妈"}
        assert listed(api, role_id=mom) == [voice_id]
        update(api, voice_id, {"role_bind": {}}, path)
        assert get_voice(api, voice_id)["role_bind"] == {}
        assert listed(api, role_id=mom) == []
        # The other fields were left alone.
        assert get_voice(api, voice_id)["threshold"] == voice["threshold"]
        assert get_voice(api, voice_id)["dev_bind"] == voice["dev_bind"]

    @pytest.mark.parametrize("as_objects", [True, False], ids=["objects", "strings"])
    @BOTH_PATHS
    def test_dev_bind_replaces_the_set(self, api, voice, path, as_objects):
        voice_id = voice["voice_id"]
        create_device(api, B, "bedroom")
        create_device(api, C, "car")

        def bind(*device_ids):
            items = [{"device_id": d} for d in device_ids] if as_objects else list(device_ids)
            update(api, voice_id, {"dev_bind": items}, path)

        bind(B, C, B)
        assert get_voice(api, voice_id)["dev_bind"] == [
            {"device_id": B, "device_name": "bedroom"},
            {"device_id": C, "device_name": "car"},
        ]
        assert [device_stats(api, d)["voice_count"] for d in (A, B, C)] == [0, 1, 1]
        assert device_voices(api, A) == [] and device_voices(api, B) == [voice_id]
        bind(A)
        assert [d["device_id"] for d in get_voice(api, voice_id)["dev_bind"]] == [A]
        assert [device_stats(api, d)["voice_count"] for d in (A, B, C)] == [1, 0, 0]
        bind()
        assert get_voice(api, voice_id)["dev_bind"] == []
        assert device_stats(api, A)["voice_count"] == 0

    def test_unknown_role_or_device_changes_nothing(self, api, voice):
        voice_id = voice["voice_id"]
        for body in (
            {"threshold": 0.9, "role_bind": {"role_id": "nope"}},
            {"threshold": 0.9, "dev_bind": [A, "nope"]},
            {"threshold": 0.9, "dev_bind": [{"device_id": "nope"}]},
        ):
            update(api, voice_id, body, code=40400)
            assert get_voice(api, voice_id) == voice

    def test_dev_bind_beyond_the_device_limit_is_40900(self, api, speech, voice, settings):
        settings.VOICEPRINT_MAX_VOICES_PER_DEVICE = 1
        create_device(api, B)
        other = enroll(api, speech.enroll("leijun"), B)
        update(api, voice["voice_id"], {"threshold": 0.9, "dev_bind": [A, B]}, code=40900)
        assert get_voice(api, voice["voice_id"]) == voice
        assert get_voice(api, other["voice_id"]) == other
        # Keeping the device it already holds is no new place: allowed at the limit.
        update(api, voice["voice_id"], {"dev_bind": [A]})
        assert device_stats(api, A)["voice_count"] == 1

    @pytest.mark.parametrize(
        "body",
        [
            {"threshold": 1.5},
            {"threshold": "abc"},
            {"role_bind": "妈妈"},
            {"role_bind": {"role_id": 7}},
            {"dev_bind": "dev-a"},
            {"dev_bind": [""]},
            {"dev_bind": [{"name": "x"}]},
        ],
    )
    def test_invalid_update_is_40000(self, api, voice, body):
        response = api.put(VP + f"voices/{voice['voice_id']}", body, format="json")
        envelope(response, 40000)
        assert next(iter(body)) in response.json()["msg"]
        assert get_voice(api, voice["voice_id"]) == voice

    def test_deleting_the_role_or_the_device_keeps_the_voice(self, api, voice):
        voice_id, mom = voice["voice_id"], create_role(api, "妈妈")
        update(api, voice_id, {"role_bind": {"role_id": mom}})
        envelope(api.delete(VP + f"roles/{mom}"))
        assert get_voice(api, voice_id)["role_bind"] == {}
        envelope(api.delete(VP + f"devices/{A}"))
        after = get_voice(api, voice_id)
        assert after["dev_bind"] == [] and after["sample_count"] == 1
        assert listed(api) == [voice_id]


@pytest.mark.django_db
class TestSamples:
    def test_a_sample_changes_the_voiceprint_to_the_mean(self, api, speech, voice):
        voice_id = voice["voice_id"]
        first, second = speech.enroll("fangjun", 1), speech.enroll("fangjun", 2)
        probe = speech.test("fangjun", 2)
        before = verify(api, voice_id, probe)["score"]

        added = add_sample(api, voice_id, second)
        assert added["sample_count"] == 2 and added["voice_id"] == voice_id
        changed = ("sample_count", "enrollment", "updated_at")
        assert {k: v for k, v in added.items() if k not in changed} == {
            k: v for k, v in voice.items() if k not in changed
        }
        after = verify(api, voice_id, probe)["score"]
        assert after != before

        # The voiceprint is the normalised mean of the samples' embeddings.
        e1, e2, p = (np.array(extract(api, audio)) for audio in (first, second, probe))
        mean = (e1 + e2) / np.linalg.norm(e1 + e2)
        assert after == pytest.approx(float(mean @ p), abs=1e-4)
        assert before == pytest.approx(float(e1 @ p), abs=1e-4)

    def test_audio_of_each_sample(self, api, speech, voice):
        voice_id = voice["voice_id"]
        second = speech.enroll("fangjun", 2)
        envelope(post_raw(api, f"voices/{voice_id}/samples", second))
        assert np.array_equal(samples_of(audio_of(api, voice_id, "1")), read_wav(second)[0])
        first = read_wav(speech.enroll("fangjun", 1))[0]
        assert np.array_equal(samples_of(audio_of(api, voice_id, "0")), first)
        assert np.array_equal(samples_of(audio_of(api, voice_id)), first)
        for index in ("9", "2", "-1", "abc", "1.0", ""):
            envelope(audio_of(api, voice_id, index), 40400)

    def test_audio_sample_index_that_is_a_digit_but_no_number(self, api, voice):
        # "²".isdigit() is True but int("²") raises: must be 40400, not 50000.
        envelope(audio_of(api, voice["voice_id"], "²"), 40400)

    def test_refused_samples_store_nothing(self, api, speech, voice, media_root):
        voice_id = voice["voice_id"]
        path = f"voices/{voice_id}/samples"
        with nothing_stored(media_root):
            envelope(post_raw(api, path, b""), 40001)
            envelope(api.post(VP + path, {}, format="json"), 40001)
            envelope(post_raw(api, path, b"garbage" * 50), 40002)
            envelope(post_raw(api, path, silence(3.0)), 40003)
            envelope(post_raw(api, path, bytes(512 * 1024 + 1)), 41300)
        assert get_voice(api, voice_id) == voice


def extract(api, audio: bytes) -> list[float]:
    return envelope(post_raw(api, "features/extract", audio))["embedding"]


@pytest.mark.django_db
class TestDelete:
    def test_delete_removes_voice_samples_audio_and_bindings(
        self, api, speech, voice, media_root, django_capture_on_commit_callbacks
    ):
        voice_id = voice["voice_id"]
        envelope(post_raw(api, f"voices/{voice_id}/samples", speech.enroll("fangjun", 2)))
        assert len(stored_files(media_root)) == 2
        assert device_voices(api, A) == [voice_id]

        with django_capture_on_commit_callbacks(execute=True):
            assert envelope(api.delete(VP + f"voices/{voice_id}")) is None

        envelope(api.get(VP + f"voices/{voice_id}"), 40400)
        envelope(audio_of(api, voice_id), 40400)
        envelope(api.delete(VP + f"voices/{voice_id}"), 40400)
        assert stored_files(media_root) == set()
        assert not Voice.objects.filter(voice_id=voice_id).exists()
        assert VoiceSample.objects.count() == 0 and VoiceBinding.objects.count() == 0
        assert device_voices(api, A) == []
        assert device_stats(api, A)["voice_count"] == 0
        assert listed(api) == []
