"""Failures every /v1/voice/ endpoint shares: auth, method, body, unknown URL, internal errors.

Each answers its real HTTP status with `{"error": {"code", "message"}}`, never HTML or a trace.
"""

from __future__ import annotations

import logging

import pytest

from tests.conftest import make_client
from tests.voice_api.conftest import V, b64, error, post
from voiceprint.voice_api import services as voice_services

ENDPOINTS = ["verify", "register", "identify", "forget", "embed", "analyze"]
INVALID, UNAUTHORIZED, NOT_FOUND, INTERNAL = 40000, 40100, 40400, 50000

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_token_is_401(client, endpoint):
    response = client.post(V + endpoint, {"id": "x"}, content_type="application/json")
    error(response, 401, UNAUTHORIZED)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bad_token_is_401(db, endpoint):
    response = post(make_client("not-a-real-token"), endpoint, {"id": "x"})
    error(response, 401, UNAUTHORIZED)


def test_other_auth_scheme_is_401(db, client):
    response = client.post(
        V + "forget", {"id": "x"}, content_type="application/json", HTTP_AUTHORIZATION="Basic eDp5"
    )
    error(response, 401, UNAUTHORIZED)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_wrong_method_is_a_json_error(api, endpoint, method):
    """API.md lists no 405; the app answers 400 (40000), saying which method is refused."""
    response = getattr(api, method)(V + endpoint)
    message = error(response, 400, INVALID)
    assert method.upper() in message


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_malformed_json_is_400(api, endpoint):
    response = api.post(V + endpoint, data='{"audio": ', content_type="application/json")
    assert "malformed" in error(response, 400, INVALID)


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null"])
def test_body_that_is_not_an_object_is_400(api, body):
    response = api.post(V + "forget", data=body, content_type="application/json")
    error(response, 400, INVALID)


def test_form_body_is_refused_as_json_error(api):
    response = api.post(V + "forget", {"id": "x"})  # multipart/form-data
    error(response, 400, INVALID)


@pytest.mark.parametrize("path", ["nope", "verify/extra", "", "Verify"])
def test_unknown_endpoint_is_404(api, path):
    error(api.post(V + path, {}, format="json"), 404, NOT_FOUND)
    error(api.get(V + path), 404, NOT_FOUND)


def test_unknown_endpoint_without_token_is_404_json(client):
    error(client.get(V + "nope"), 404, NOT_FOUND)


def test_unhandled_exception_is_500_without_trace(api, speech, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(voice_services, "pair_verify", explode)
    audio = b64(speech.speaker3d("speaker1_a_en"))
    with caplog.at_level(logging.ERROR):
        response = post(api, "verify", {"audio1": audio, "audio2": audio})
    error(response, 500, INTERNAL)
    assert "secret internals" not in response.content.decode()
