"""Assertions shared by the API tests."""

from __future__ import annotations

from typing import Any

VP = "/v1/voiceprint/"


def envelope(response, code: int = 0) -> Any:
    """Check a Voiceprint API reply is an HTTP 200 envelope with `code`; return its data."""
    assert response.status_code == 200, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"code", "msg", "data"}, body
    assert body["code"] == code, body
    if code == 0:
        assert body["msg"] == ""
    else:
        assert body["data"] is None
        assert body["msg"], "an error must say what is wrong"
        assert "Traceback" not in body["msg"]
    return body["data"]
