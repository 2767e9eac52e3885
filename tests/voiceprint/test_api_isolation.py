"""Another tenant's voices, devices and roles answer exactly like ones that do not exist."""

from __future__ import annotations

import pytest

from tests.conftest import make_client
from tests.helpers import VP, envelope
from tests.voiceprint.conftest import (
    create_device,
    create_role,
    device_stats,
    enroll,
    get_voice,
    identify,
    nothing_stored,
    post_raw,
    update,
)

A = "dev-a"


@pytest.fixture
def acme(api, speech) -> dict:
    """Tenant acme: device A, role 妈妈 and fangjun's voice bound to both."""
    create_device(api, A, "acme kitchen")
    mom = create_role(api, "妈妈")
    voice = enroll(api, speech.enroll("fangjun"), A, role_id=mom, voice_name="acme")
    return {"voice": voice, "voice_id": voice["voice_id"], "mom": mom}


@pytest.mark.django_db
class TestIsolation:
    def test_another_tenant_cannot_reach_the_voice(self, api, other_api, speech, acme, media_root):
        voice_id, audio = acme["voice_id"], speech.test("fangjun", 1)
        attempts = {
            "get": lambda v: other_api.get(VP + f"voices/{v}"),
            "put": lambda v: other_api.put(VP + f"voices/{v}", {"threshold": 0.1}, format="json"),
            "bind": lambda v: other_api.put(
                VP + f"voicesbind/{v}", {"dev_bind": [], "role_bind": {}}, format="json"
            ),
            "delete": lambda v: other_api.delete(VP + f"voices/{v}"),
            "samples": lambda v: post_raw(other_api, f"voices/{v}/samples", audio),
            "audio": lambda v: other_api.get(VP + f"voices/{v}/audio"),
            "verify": lambda v: post_raw(other_api, f"voices/{v}/verify", audio),
        }
        with nothing_stored(media_root):
            for name, attempt in attempts.items():
                response = attempt(voice_id)
                envelope(response, 40400)
                missing = attempt("does-not-exist")
                assert response.json() == missing.json(), name
            assert envelope(other_api.get(VP + "voices")) == []
            assert envelope(other_api.get(VP + "voices", {"device_id": A})) == []
            # acme's device does not exist for globex: no identify, no enrollment there.
            envelope(post_raw(other_api, "voices/identify", audio, device_id=A), 40400)
            envelope(post_raw(other_api, "voices/create", audio, device_id=A), 40400)
        assert get_voice(api, voice_id) == acme["voice"]
        assert device_stats(api, A)["identify_count"] == 0

    def test_another_tenant_cannot_bind_our_device_or_role(
        self, api, other_api, speech, acme, media_root
    ):
        create_device(other_api, "dev-b")
        theirs = enroll(other_api, speech.enroll("leijun"), "dev-b")
        their_id = theirs["voice_id"]
        update(other_api, their_id, {"dev_bind": [A]}, code=40400)
        update(other_api, their_id, {"dev_bind": [{"device_id": A}]}, "voicesbind", 40400)
        update(other_api, their_id, {"role_bind": {"role_id": acme["mom"]}}, code=40400)
        with nothing_stored(media_root):
            response = post_raw(
                other_api, "voices/create", speech.enroll("leijun"),
                device_id="dev-b", role_id=acme["mom"],
            )  # fmt: skip
            envelope(response, 40400)
        assert get_voice(other_api, their_id) == theirs
        assert envelope(api.get(VP + f"devices/{A}"))["voices"] == [acme["voice_id"]]
        assert [v["voice_id"] for v in envelope(api.get(VP + "voices"))] == [acme["voice_id"]]
        assert [v["voice_id"] for v in envelope(other_api.get(VP + "voices"))] == [their_id]

    def test_same_device_id_in_two_tenants_identifies_only_its_own_voices(
        self, api, other_api, speech, acme
    ):
        create_device(other_api, A, "globex kitchen")
        theirs = enroll(other_api, speech.enroll("leijun"), A)
        # fangjun speaking into globex's "dev-a" must not find acme's fangjun.
        result = identify(other_api, speech.test("fangjun", 1), A)
        assert [c["voice_id"] for c in result["candidates"]] == [theirs["voice_id"]]
        assert result["voice_id"] in (None, theirs["voice_id"])
        assert device_stats(api, A)["identify_count"] == 0
        assert device_stats(other_api, A)["identify_count"] == 1


@pytest.mark.django_db
class TestAuthentication:
    def test_voice_audio_needs_a_token(self, api, acme):
        url = acme["voice"]["voice_url"]
        for client in (make_client(None), make_client("not-a-real-token")):
            envelope(client.get(url), 40100)
        assert api.get(url).status_code == 200

    def test_voice_endpoints_need_a_token(self, speech, acme, media_root):
        anonymous = make_client(None)
        audio = speech.test("fangjun", 1)
        voice_id = acme["voice_id"]
        with nothing_stored(media_root):
            envelope(anonymous.get(VP + "voices"), 40100)
            envelope(anonymous.get(VP + f"voices/{voice_id}"), 40100)
            envelope(anonymous.delete(VP + f"voices/{voice_id}"), 40100)
            for path in ("voices/create", "voices/identify", f"voices/{voice_id}/verify",
                         f"voices/{voice_id}/samples", "features/extract"):  # fmt: skip
                envelope(post_raw(anonymous, path, audio, device_id=A), 40100)
