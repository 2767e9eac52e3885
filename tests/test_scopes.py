"""Token scopes over every endpoint of both API surfaces.

Tenant acme has two devices, `kitchen` (voice mom, two samples) and `hall` (voice dad), a
role, an interrupt setting and a Voice API voice. Every endpoint is called, aimed at the
kitchen and its voice, with four tokens: admin, read, device (the kitchen's) and device
(the hall's, so every such request is outside its device). Where the table allows the
scope the call works (code 0, or a 2xx on the Voice API); elsewhere it answers 40300
(HTTP 403 on the Voice API) and changes nothing: no voice, sample, binding, file, device,
role, interrupt setting or token. The table must name every route and method of both
surfaces (`test_the_table_covers_every_endpoint`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tenancy.models import ApiToken, TokenScope
from tenancy.services import token_issue
from tests.conftest import make_client
from tests.helpers import VP, api_routes, b64, envelope, nothing_stored, post_raw

V = "/v1/voice/"
KITCHEN, HALL = "kitchen", "hall"
AGENT = "agent_001"
STORE = "acme-store"
ADMIN, READ, DEVICE, OTHER_DEVICE = "admin", "read", "device", "device (other device)"
SCOPES = (ADMIN, READ, DEVICE, OTHER_DEVICE)


@pytest.fixture
def audio(shared_audio) -> dict[str, bytes]:
    zh = shared_audio / "zh"
    return {
        "mom": (zh / "enroll" / "fangjun-sr-1.wav").read_bytes(),
        "mom2": (zh / "enroll" / "fangjun-sr-2.wav").read_bytes(),
        "probe": (zh / "test" / "fangjun-test-sr-1.wav").read_bytes(),
        "dad": (zh / "enroll" / "leijun-sr-1.wav").read_bytes(),
        "kid": (zh / "enroll" / "liudehua-sr-1.wav").read_bytes(),
    }


@pytest.fixture
def acme(api, tenant, audio) -> dict[str, str]:
    for device_id in (KITCHEN, HALL):
        envelope(api.post(VP + "devices", {"device_id": device_id}, format="json"))
    role_id = envelope(api.post(VP + "roles", {"role_name": "mom"}, format="json"))["role_id"]
    mom = envelope(
        post_raw(api, "voices/create", audio["mom"], device_id=KITCHEN, role_id=role_id)
    )["voice_id"]
    envelope(post_raw(api, f"voices/{mom}/samples", audio["mom2"]))
    envelope(post_raw(api, "voices/create", audio["dad"], device_id=HALL))
    setting = {"roleinterrupt": [{"role_id": role_id, "interrupt": "false"}]}
    envelope(api.put(VP + f"roleinterrupt/{AGENT}", setting, format="json"))
    body = {"audio": b64(audio["kid"]), "store": STORE, "name": "kid"}
    stored = api.post(V + "register", body, format="json")
    assert stored.status_code == 200, stored.content[:300]
    spare = envelope(api.post(VP + "tokens", {"scope": "read", "label": "spare"}, format="json"))
    return {"role": role_id, "voice": mom, "stored": stored.json()["id"], "token": spare["prefix"]}


@pytest.fixture
def clients(api, tenant) -> dict[str, object]:
    def issued(scope: str, device_id: str = "") -> object:
        return make_client(token_issue(tenant, scope=scope, device_id=device_id).plaintext)

    return {
        ADMIN: api,
        READ: issued(TokenScope.READ),
        DEVICE: issued(TokenScope.DEVICE, KITCHEN),
        OTHER_DEVICE: issued(TokenScope.DEVICE, HALL),
    }


@dataclass(frozen=True)
class Row:
    """One endpoint and method, called with acme's ids, and the scopes that may call it
    (admin may call everything; the other-device token nothing)."""

    route: str  # the full URL pattern, as in the URL conf
    method: str
    call: Callable  # (client, ids, audio) -> response
    allowed: frozenset[str]


ADMIN_ONLY = frozenset({ADMIN})
READABLE = frozenset({ADMIN, READ})
DEVICE_BOUND = frozenset({ADMIN, DEVICE})
P, VA = "v1/voiceprint/", "v1/voice/"


def _json(method: str, path: str, body: Callable | None = None) -> Callable:
    def call(client, ids, audio):
        url = path.format(**ids)
        if body is None:
            return getattr(client, method)(url)
        return getattr(client, method)(url, body(ids, audio), format="json")

    return call


def _audio(path: str, sample: str, **headers: str) -> Callable:
    return lambda c, ids, a: post_raw(c, path.format(**ids), a[sample], **headers)


ROWS = [
    Row(P + "roles", "get", _json("get", VP + "roles"), READABLE),
    Row(
        P + "roles",
        "post",
        _json("post", VP + "roles", lambda i, a: {"role_name": "kid"}),
        ADMIN_ONLY,
    ),
    Row(P + "roles/<str:role_id>", "get", _json("get", VP + "roles/{role}"), READABLE),
    Row(P + "roles/<str:role_id>", "delete", _json("delete", VP + "roles/{role}"), ADMIN_ONLY),
    Row(P + "devices", "get", _json("get", VP + "devices"), READABLE),
    Row(
        P + "devices",
        "post",
        _json("post", VP + "devices", lambda i, a: {"device_id": "porch"}),
        ADMIN_ONLY,
    ),
    Row(
        P + "devices/<str:device_id>",
        "get",
        _json("get", VP + f"devices/{KITCHEN}"),
        frozenset({ADMIN, READ, DEVICE}),
    ),
    Row(
        P + "devices/<str:device_id>",
        "put",
        _json("put", VP + f"devices/{KITCHEN}", lambda i, a: {"device_name": "x"}),
        ADMIN_ONLY,
    ),
    Row(
        P + "devices/<str:device_id>",
        "delete",
        _json("delete", VP + f"devices/{KITCHEN}"),
        ADMIN_ONLY,
    ),
    Row(
        P + "roleinterrupt/<str:agent_id>",
        "get",
        _json("get", VP + f"roleinterrupt/{AGENT}"),
        READABLE,
    ),
    Row(
        P + "roleinterrupt/<str:agent_id>",
        "put",
        _json("put", VP + f"roleinterrupt/{AGENT}", lambda i, a: {"uncertain_interrupt": "false"}),
        ADMIN_ONLY,
    ),
    Row(P + "voices", "get", _json("get", VP + "voices"), READABLE),
    Row(
        P + "voices/create", "post", _audio("voices/create", "kid", device_id=KITCHEN), DEVICE_BOUND
    ),
    Row(
        P + "voices/identify",
        "post",
        _audio("voices/identify", "probe", device_id=KITCHEN),
        DEVICE_BOUND,
    ),
    Row(P + "voices/<str:voice_id>", "get", _json("get", VP + "voices/{voice}"), READABLE),
    Row(
        P + "voices/<str:voice_id>",
        "put",
        _json("put", VP + "voices/{voice}", lambda i, a: {"threshold": 0.1}),
        ADMIN_ONLY,
    ),
    Row(P + "voices/<str:voice_id>", "delete", _json("delete", VP + "voices/{voice}"), ADMIN_ONLY),
    Row(
        P + "voicesbind/<str:voice_id>",
        "put",
        _json("put", VP + "voicesbind/{voice}", lambda i, a: {"dev_bind": [HALL]}),
        ADMIN_ONLY,
    ),
    Row(
        P + "voices/<str:voice_id>/samples",
        "get",
        _json("get", VP + "voices/{voice}/samples"),
        READABLE,
    ),
    Row(
        P + "voices/<str:voice_id>/samples",
        "post",
        _audio("voices/{voice}/samples", "probe"),
        DEVICE_BOUND,
    ),
    Row(
        P + "voices/<str:voice_id>/samples/<str:index>",
        "delete",
        _json("delete", VP + "voices/{voice}/samples/1"),
        ADMIN_ONLY,
    ),
    Row(
        P + "voices/<str:voice_id>/audio",
        "get",
        _json("get", VP + "voices/{voice}/audio"),
        READABLE,
    ),
    Row(
        P + "voices/<str:voice_id>/export",
        "get",
        _json("get", VP + "voices/{voice}/export"),
        READABLE,
    ),
    Row(
        P + "voices/<str:voice_id>/verify",
        "post",
        _audio("voices/{voice}/verify", "probe"),
        DEVICE_BOUND,
    ),
    Row(P + "features/extract", "post", _audio("features/extract", "probe"), ADMIN_ONLY),
    Row(P + "tokens", "get", _json("get", VP + "tokens"), ADMIN_ONLY),
    Row(
        P + "tokens",
        "post",
        _json("post", VP + "tokens", lambda i, a: {"scope": "device", "device_id": KITCHEN}),
        ADMIN_ONLY,
    ),
    Row(P + "tokens/<str:prefix>", "delete", _json("delete", VP + "tokens/{token}"), ADMIN_ONLY),
    # Voice API: every operation is a POST, so read tokens have none; device tokens none
    # either (its stores are not devices').
    Row(
        VA + "verify",
        "post",
        _json(
            "post",
            V + "verify",
            lambda i, a: {"audio1": b64(a["mom"]), "audio2": b64(a["probe"])},
        ),
        ADMIN_ONLY,
    ),
    Row(
        VA + "register",
        "post",
        _json(
            "post",
            V + "register",
            lambda i, a: {"audio": b64(a["dad"]), "store": STORE, "name": "dad"},
        ),
        ADMIN_ONLY,
    ),
    Row(
        VA + "identify",
        "post",
        _json("post", V + "identify", lambda i, a: {"audio": b64(a["kid"]), "store": STORE}),
        ADMIN_ONLY,
    ),
    Row(
        VA + "forget",
        "post",
        _json("post", V + "forget", lambda i, a: {"id": i["stored"]}),
        ADMIN_ONLY,
    ),
    Row(
        VA + "embed",
        "post",
        _json("post", V + "embed", lambda i, a: {"audio": b64(a["probe"])}),
        ADMIN_ONLY,
    ),
    Row(
        VA + "analyze",
        "post",
        _json(
            "post", V + "analyze", lambda i, a: {"audio": b64(a["probe"]), "actions": ["gender"]}
        ),
        ADMIN_ONLY,
    ),
]


def acme_state(tenant) -> dict:
    """Everything of acme's a request could change, read from the database."""
    from devices.models import Device
    from interrupts.models import AgentPolicy, RoleInterrupt
    from roles.models import Role
    from voiceprint.models import Voice

    return {
        "devices": list(Device.objects.filter(tenant=tenant).values("device_id", "device_name")),
        "roles": list(Role.objects.filter(tenant=tenant).values_list("role_id", flat=True)),
        "voices": list(
            Voice.objects.filter(tenant=tenant).values("voice_id", "threshold", "role_id", "name")
        ),
        "interrupts": list(RoleInterrupt.objects.values()) + list(AgentPolicy.objects.values()),
        "tokens": list(ApiToken.objects.filter(tenant=tenant).values("prefix", "revoked_at")),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row.method.upper()} {row.route}")
def test_scope_matrix(row, scope, clients, acme, audio, tenant, media_root):
    client = clients[scope]
    if scope in row.allowed:
        response = row.call(client, acme, audio)
        assert _works(response), (response.status_code, response.content[:300])
        return
    before = acme_state(tenant)
    with nothing_stored(media_root):
        response = row.call(client, acme, audio)
    if row.route.startswith(VA):
        assert response.status_code == 403, response.content[:300]
        assert response.json()["error"]["code"] == 40300
    else:
        envelope(response, 40300)
    assert acme_state(tenant) == before


def _works(response) -> bool:
    if response.request["PATH_INFO"].startswith(V):
        return 200 <= response.status_code < 300
    if getattr(response, "streaming", False):  # a WAV download, a voice's export
        downloads = ("audio/wav", "application/zip")
        return response.status_code == 200 and response["Content-Type"] in downloads
    return response.status_code == 200 and response.json()["code"] == 0


def test_the_table_covers_every_endpoint():
    table = {(row.route, row.method) for row in ROWS}
    routes = api_routes()
    assert routes == table, {"missing": routes - table, "unknown": table - routes}


def test_admin_and_device_only_are_ever_allowed_to_write():
    for row in ROWS:
        assert ADMIN in row.allowed and OTHER_DEVICE not in row.allowed, row
        if row.method != "get":
            assert READ not in row.allowed, row


@pytest.mark.django_db
class TestDeviceToken:
    def test_identify_reaches_only_its_devices_voices(self, clients, acme, audio):
        reply = envelope(
            post_raw(clients[DEVICE], "voices/identify", audio["probe"], device_id=KITCHEN)
        )
        assert reply["matched"] and reply["voice_id"] == acme["voice"]
        dad_probe = audio["dad"]  # dad is on the hall: the kitchen never names him
        reply = envelope(post_raw(clients[DEVICE], "voices/identify", dad_probe, device_id=KITCHEN))
        assert not reply["matched"]
        assert all(c["voice_id"] == acme["voice"] for c in reply["candidates"])

    def test_enrollment_names_no_look_alike_of_another_device(self, api, clients, acme, audio):
        """dad's voice (on the hall) is the closest voice to a second recording of dad: an
        admin sees it among `similar_voices`, the kitchen's token does not."""
        dad = envelope(api.get(VP + "devices/" + HALL))["voices"][0]
        as_admin = envelope(post_raw(api, "voices/create", audio["dad"], device_id=KITCHEN))
        assert dad in [v["voice_id"] for v in as_admin["similar_voices"]]
        own = envelope(post_raw(clients[DEVICE], "voices/create", audio["dad"], device_id=KITCHEN))
        seen = {v["voice_id"] for v in own["similar_voices"]}
        assert dad not in seen and dad not in str(own["enrollment"]["issues"])

    def test_enrollment_binds_the_voice_to_its_device(self, clients, acme, audio, api):
        voice = envelope(
            post_raw(clients[DEVICE], "voices/create", audio["kid"], device_id=KITCHEN)
        )
        assert [d["device_id"] for d in voice["dev_bind"]] == [KITCHEN]
        envelope(post_raw(clients[DEVICE], f"voices/{voice['voice_id']}/verify", audio["kid"]))

    def test_a_missing_voice_answers_like_another_devices(self, clients, acme, audio):
        envelope(post_raw(clients[DEVICE], "voices/no-such-voice/verify", audio["probe"]), 40300)

    def test_device_in_a_json_body_is_checked_too(self, clients, acme, audio):
        body = {"audio_base64": b64(audio["probe"])}
        own = clients[DEVICE].post(
            VP + "voices/identify", {**body, "device_id": KITCHEN}, format="json"
        )
        envelope(own)
        other = clients[DEVICE].post(
            VP + "voices/identify", {**body, "device_id": HALL}, format="json"
        )
        envelope(other, 40300)
        without = clients[DEVICE].post(VP + "voices/identify", body, format="json")
        envelope(without, 40300)

    def test_deleting_the_device_revokes_its_tokens(self, api, clients, acme):
        envelope(clients[DEVICE].get(VP + f"devices/{KITCHEN}"))
        envelope(api.delete(VP + f"devices/{KITCHEN}"))
        envelope(clients[DEVICE].get(VP + f"devices/{KITCHEN}"), 40100)
        envelope(api.post(VP + "devices", {"device_id": KITCHEN}, format="json"))
        envelope(clients[DEVICE].get(VP + f"devices/{KITCHEN}"), 40100)
        envelope(clients[OTHER_DEVICE].get(VP + f"devices/{HALL}"))


@pytest.mark.django_db
class TestTokenEndpoints:
    def test_issue_a_device_token_shown_once(self, api, tenant, acme):
        reply = envelope(
            api.post(
                VP + "tokens",
                {"scope": "device", "device_id": KITCHEN, "label": "firmware"},
                format="json",
            )
        )
        assert reply["scope"] == "device" and reply["device_id"] == KITCHEN
        token = ApiToken.objects.get(tenant=tenant, prefix=reply["prefix"])
        assert reply["token"] not in {token.digest} and reply["token"].startswith("vp_")
        listed = envelope(api.get(VP + "tokens"))
        assert reply["token"] not in str(listed) and token.digest not in str(listed)
        entry = next(t for t in listed if t["prefix"] == reply["prefix"])
        assert entry == {
            "prefix": reply["prefix"],
            "label": "firmware",
            "scope": "device",
            "device_id": KITCHEN,
            "created_at": reply["created_at"],
            "last_used_at": None,
            "revoked_at": None,
        }
        device = make_client(reply["token"])
        envelope(device.get(VP + f"devices/{KITCHEN}"))
        envelope(device.get(VP + f"devices/{HALL}"), 40300)

    def test_revoke_ends_a_token(self, api, acme):
        reply = envelope(api.post(VP + "tokens", {"scope": "read"}, format="json"))
        reader = make_client(reply["token"])
        envelope(reader.get(VP + "roles"))
        envelope(api.delete(VP + f"tokens/{reply['prefix']}"))
        envelope(reader.get(VP + "roles"), 40100)
        listed = envelope(api.get(VP + "tokens"))
        assert next(t for t in listed if t["prefix"] == reply["prefix"])["revoked_at"]
        envelope(api.delete(VP + "tokens/nosuchpf"), 40400)

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"scope": "device"}, 40000),
            ({"scope": "device", "device_id": "no-such-device"}, 40400),
            ({"scope": "read", "device_id": KITCHEN}, 40000),
            ({"scope": "root"}, 40000),
            ({}, 40000),
        ],
    )
    def test_refused_requests_issue_nothing(self, api, tenant, acme, body, code):
        count = ApiToken.objects.count()
        envelope(api.post(VP + "tokens", body, format="json"), code)
        assert ApiToken.objects.count() == count

    def test_tokens_made_before_scopes_are_admin(self, tenant):
        assert ApiToken.objects.get(tenant=tenant).scope == TokenScope.ADMIN
