"""Tenant isolation over every endpoint of both API surfaces.

Tenant acme owns one of everything (a device, a role, a bound voice with its audio, an
interrupt setting, a Voice API voice in a store of its own). Tenant globex then calls every
endpoint with acme's ids: an id of another tenant answers exactly like an id that does not
exist, a list shows nothing of acme's, and nothing acme can see changes. The table below
must name every route and method of both surfaces: a new endpoint without a row fails
`test_the_table_covers_every_endpoint`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.conftest import stored_files
from tests.helpers import VP, api_routes, b64, envelope, post_raw

V = "/v1/voice/"
DEVICE = "acme-kitchen"
AGENT = "agent_001"
STORE = "acme-store"
MISSING = "does-not-exist"


@pytest.fixture
def audio(shared_audio) -> dict[str, bytes]:
    zh = shared_audio / "zh"
    return {
        "enroll": (zh / "enroll" / "fangjun-sr-1.wav").read_bytes(),
        "probe": (zh / "test" / "fangjun-test-sr-1.wav").read_bytes(),
        "other": (zh / "enroll" / "leijun-sr-1.wav").read_bytes(),
    }


@pytest.fixture
def acme(api, audio) -> dict[str, str]:
    envelope(
        api.post(VP + "devices", {"device_id": DEVICE, "device_name": "kitchen"}, format="json")
    )
    role_id = envelope(api.post(VP + "roles", {"role_name": "mom"}, format="json"))["role_id"]
    voice = envelope(
        post_raw(
            api,
            "voices/create",
            audio["enroll"],
            device_id=DEVICE,
            role_id=role_id,
            voice_name="mom",
        )
    )
    setting = {
        "roleinterrupt": [{"role_id": role_id, "interrupt": "false"}],
        "uncertain_interrupt": "true",
    }
    envelope(api.put(VP + f"roleinterrupt/{AGENT}", setting, format="json"))
    registered = api.post(
        V + "register",
        {"audio": b64(audio["other"]), "name": "dad", "store": STORE},
        format="json",
    )
    assert registered.status_code == 200, registered.content[:300]
    token = envelope(api.post(VP + "tokens", {"scope": "read"}, format="json"))
    return {
        "role": role_id,
        "voice": voice["voice_id"],
        "stored": registered.json()["id"],
        "token": token["prefix"],
    }


def acme_sees(api) -> dict:
    """Everything acme can read through the API, device counters included."""
    voices = envelope(api.get(VP + "voices"))
    return {
        "roles": envelope(api.get(VP + "roles")),
        "devices": envelope(api.get(VP + "devices")),
        "device": envelope(api.get(VP + f"devices/{DEVICE}")),
        "voices": voices,
        "details": [envelope(api.get(VP + f"voices/{v['voice_id']}")) for v in voices],
        "audio": [_body(api.get(VP + f"voices/{v['voice_id']}/audio")) for v in voices],
        "interrupts": envelope(api.get(VP + f"roleinterrupt/{AGENT}")),
        # Without last_used_at: the call that reads it moves it.
        "tokens": [
            {k: v for k, v in t.items() if k != "last_used_at"}
            for t in envelope(api.get(VP + "tokens"))
        ],
    }


def _body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


@dataclass(frozen=True)
class Row:
    """One endpoint and method, called by globex with acme's ids (`ids`) and, for rows
    that take an id, with a missing one: both replies must be the same not-found."""

    route: str  # the URL pattern, as in the urls modules
    method: str
    call: Callable  # (client, ids, audio) -> response
    takes_id: bool = False


def _voice(method: str, suffix: str = "", body: Callable | None = None) -> Callable:
    def call(client, ids, audio):
        path = VP + f"voices/{ids['voice']}{suffix}"
        if body is None:
            return getattr(client, method)(path)
        return getattr(client, method)(path, body(ids), format="json")

    return call


ROWS = [
    # Voiceprint API: roles
    Row("roles", "get", lambda c, ids, a: c.get(VP + "roles")),
    Row(
        "roles", "post", lambda c, ids, a: c.post(VP + "roles", {"role_name": "mom"}, format="json")
    ),
    Row(
        "roles/<str:role_id>",
        "get",
        lambda c, ids, a: c.get(VP + f"roles/{ids['role']}"),
        takes_id=True,
    ),
    Row(
        "roles/<str:role_id>",
        "delete",
        lambda c, ids, a: c.delete(VP + f"roles/{ids['role']}"),
        takes_id=True,
    ),
    # devices
    Row("devices", "get", lambda c, ids, a: c.get(VP + "devices")),
    Row(
        "devices",
        "post",
        lambda c, ids, a: c.post(
            VP + "devices", {"device_id": DEVICE, "device_name": "theirs"}, format="json"
        ),
    ),
    Row(
        "devices/<str:device_id>",
        "get",
        lambda c, ids, a: c.get(VP + f"devices/{ids['device']}"),
        takes_id=True,
    ),
    Row(
        "devices/<str:device_id>",
        "put",
        lambda c, ids, a: c.put(
            VP + f"devices/{ids['device']}", {"device_name": "pwned"}, format="json"
        ),
        takes_id=True,
    ),
    Row(
        "devices/<str:device_id>",
        "delete",
        lambda c, ids, a: c.delete(VP + f"devices/{ids['device']}"),
        takes_id=True,
    ),
    # role interrupt: acme's role id is unknown to globex
    Row(
        "roleinterrupt/<str:agent_id>",
        "get",
        lambda c, ids, a: c.get(VP + f"roleinterrupt/{AGENT}"),
    ),
    Row(
        "roleinterrupt/<str:agent_id>",
        "put",
        lambda c, ids, a: c.put(
            VP + f"roleinterrupt/{AGENT}",
            {
                "roleinterrupt": [{"role_id": ids["role"], "interrupt": "true"}],
                "uncertain_interrupt": "false",
            },
            format="json",
        ),
        takes_id=True,
    ),
    # voices
    Row("voices", "get", lambda c, ids, a: c.get(VP + "voices", {"device_id": DEVICE})),
    Row(
        "voices/create",
        "post",
        lambda c, ids, a: post_raw(c, "voices/create", a["enroll"], device_id=ids["device"]),
        takes_id=True,
    ),
    Row(
        "voices/identify",
        "post",
        lambda c, ids, a: post_raw(c, "voices/identify", a["probe"], device_id=ids["device"]),
        takes_id=True,
    ),
    Row("voices/<str:voice_id>", "get", _voice("get"), takes_id=True),
    Row(
        "voices/<str:voice_id>",
        "put",
        _voice("put", body=lambda ids: {"threshold": 0.1}),
        takes_id=True,
    ),
    Row("voices/<str:voice_id>", "delete", _voice("delete"), takes_id=True),
    Row(
        "voicesbind/<str:voice_id>",
        "put",
        lambda c, ids, a: c.put(
            VP + f"voicesbind/{ids['voice']}", {"dev_bind": [], "role_bind": {}}, format="json"
        ),
        takes_id=True,
    ),
    Row(
        "voices/<str:voice_id>/samples",
        "post",
        lambda c, ids, a: post_raw(c, f"voices/{ids['voice']}/samples", a["enroll"]),
        takes_id=True,
    ),
    Row("voices/<str:voice_id>/samples", "get", _voice("get", "/samples"), takes_id=True),
    Row(
        "voices/<str:voice_id>/samples/<str:index>",
        "delete",
        _voice("delete", "/samples/0"),
        takes_id=True,
    ),
    Row("voices/<str:voice_id>/audio", "get", _voice("get", "/audio"), takes_id=True),
    Row("voices/<str:voice_id>/export", "get", _voice("get", "/export"), takes_id=True),
    Row(
        "voices/<str:voice_id>/verify",
        "post",
        lambda c, ids, a: post_raw(c, f"voices/{ids['voice']}/verify", a["probe"]),
        takes_id=True,
    ),
    Row("features/extract", "post", lambda c, ids, a: post_raw(c, "features/extract", a["probe"])),
    # tokens: a token of another tenant, or one for its device, is not found
    Row("tokens", "get", lambda c, ids, a: c.get(VP + "tokens")),
    Row(
        "tokens",
        "post",
        lambda c, ids, a: c.post(
            VP + "tokens", {"scope": "device", "device_id": ids["device"]}, format="json"
        ),
        takes_id=True,
    ),
    Row(
        "tokens/<str:prefix>",
        "delete",
        lambda c, ids, a: c.delete(VP + f"tokens/{ids['token']}"),
        takes_id=True,
    ),
    # Voice API: stores are per tenant, so acme's store is an empty one of globex's
    Row(
        "verify",
        "post",
        lambda c, ids, a: c.post(
            V + "verify", {"audio1": b64(a["enroll"]), "audio2": b64(a["probe"])}, format="json"
        ),
    ),
    Row(
        "register",
        "post",
        lambda c, ids, a: c.post(
            V + "register",
            {"audio": b64(a["enroll"]), "name": "mom", "store": STORE},
            format="json",
        ),
    ),
    Row(
        "identify",
        "post",
        lambda c, ids, a: c.post(
            V + "identify", {"audio": b64(a["other"]), "store": STORE}, format="json"
        ),
    ),
    Row(
        "forget",
        "post",
        lambda c, ids, a: c.post(V + "forget", {"id": ids["stored"]}, format="json"),
        takes_id=True,
    ),
    Row(
        "embed",
        "post",
        lambda c, ids, a: c.post(V + "embed", {"audio": b64(a["probe"])}, format="json"),
    ),
    Row(
        "analyze",
        "post",
        lambda c, ids, a: c.post(V + "analyze", {"audio": b64(a["probe"])}, format="json"),
    ),
]


def _ids(acme: dict[str, str]) -> dict[str, str]:
    return {**acme, "device": DEVICE}


@pytest.mark.django_db
@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row.method.upper()} {row.route}")
def test_another_tenant_reaches_nothing(row, api, other_api, acme, audio, media_root):
    before = acme_sees(api)
    files = stored_files(media_root)
    response = row.call(other_api, _ids(acme), audio)
    assert response.status_code != 500, response.content[:300]
    if row.takes_id:
        missing = row.call(other_api, dict.fromkeys(_ids(acme), MISSING), audio)
        # The same reply, up to the id it names.
        assert _reply(response, _ids(acme)) == _reply(missing), row
        assert _code(response) in (40400, 404), _reply(response)
    else:
        text = _body(response).decode(errors="replace")
        for own_id in acme.values():  # a list or a result never shows acme's records
            assert own_id not in text, (row, text[:300])
    assert acme_sees(api) == before
    new_files = stored_files(media_root) - files
    assert all(acme["voice"] not in name for name in new_files)


def _reply(response, ids: dict[str, str] | None = None) -> object:
    body = _body(response).decode()
    for value in (ids or {}).values():
        body = body.replace(value, MISSING)
    return json.loads(body) if body else response.status_code


def _code(response) -> int:
    body = _reply(response)
    if isinstance(body, dict):
        return body["error"]["code"] if "error" in body else body["code"]
    return body


def test_the_table_covers_every_endpoint():
    routes = api_routes()
    table = {(route, row.method) for row in ROWS for route in _full(row)}
    assert routes == table, {"missing": routes - table, "unknown": table - routes}


def _full(row: Row) -> list[str]:
    surface = (
        "v1/voice/"
        if row.route in {"verify", "register", "identify", "forget", "embed", "analyze"}
        else "v1/voiceprint/"
    )
    return [surface + row.route]
