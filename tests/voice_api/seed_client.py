"""A Voice Recognition client written only from the seed document's API reference
(seeds/000_ce4166e7f484394a.txt, "API reference" and "Audio input"), not from this project.

Everything it sends and checks is in the seed's field tables:

- POST /v1/voice/verify   {model?, audio1, audio2, threshold?, anti_spoofing?}
                          -> verified, distance, threshold, confidence, model, processing_time_ms
- POST /v1/voice/analyze  {model?, audio, actions?}  -> age / gender / emotion (what it can);
                          501 when nothing can be computed
- POST /v1/voice/register {model?, audio, name, labels?, store?} -> {id, name, registered_at}
- POST /v1/voice/identify {model?, audio, top_k?, threshold?, store?} -> matches sorted by
                          ascending distance, each {id, name, labels, distance, confidence, match}
- POST /v1/voice/forget   {id} -> 204 No Content, 404 Not Found if the id is unknown
- POST /v1/voice/embed    {model?, audio} -> {embedding: float[], dim: int, model: string},
                          L2-normalised

Audio fields take an http(s) URL, raw base64 (no prefix) or a data URI
(`data:audio/wav;base64,...`); see `raw_base64` and `data_uri`. `model` is optional here: the
seed's gallery names (speechbrain-ecapa-tdnn, ...) belong to another deployment, so the client
leaves the choice to the server unless told. Authentication is a Bearer token.

The seed says identify "returns a list of matches"; whether that list is the whole body or
sits under a `matches` key is not spelled out, so both are accepted.
"""

from __future__ import annotations

import base64
import json
import math
import urllib.error
import urllib.request
from typing import Any

__all__ = ["ContractError", "SeedVoiceClient", "VoiceAPIError", "data_uri", "raw_base64"]

ATTRIBUTES = ("age", "gender", "emotion")


def raw_base64(audio: bytes) -> str:
    """Audio as raw base64 (no prefix), one of the seed's three audio forms."""
    return base64.b64encode(audio).decode("ascii")


def data_uri(audio: bytes, mime: str = "audio/wav") -> str:
    """Audio as a data URI, e.g. data:audio/wav;base64,..."""
    return f"data:{mime};base64,{raw_base64(audio)}"


class VoiceAPIError(Exception):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.body = body


class ContractError(AssertionError):
    """A reply does not have the shape the seed documents."""


def _require(condition: bool, what: str, reply: Any) -> None:
    if not condition:
        raise ContractError(f"{what}; reply: {reply!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class SeedVoiceClient:
    def __init__(self, base_url: str, token: str, timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        # Talk to the server directly, whatever proxy the environment names.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ------------------------------------------------------------------ transport

    def _post(self, endpoint: str, body: dict[str, Any]) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.base_url}/v1/voice/{endpoint}",
            data=json.dumps({k: v for k, v in body.items() if v is not None}).encode("utf-8"),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": f"Bearer {self.token}",
            },
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            raise VoiceAPIError(exc.code, _decode(exc.read())) from None

    def _post_object(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        status, reply = self._post(endpoint, body)
        _require(status == 200, f"{endpoint}: expected HTTP 200, got {status}", reply)
        _require(isinstance(reply, dict), f"{endpoint}: expected a JSON object", reply)
        return reply

    # ------------------------------------------------------------------ endpoints

    def verify(
        self,
        audio1: str,
        audio2: str,
        threshold: float | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        reply = self._post_object(
            "verify", {"model": model, "audio1": audio1, "audio2": audio2, "threshold": threshold}
        )
        for key in ("verified", "distance", "threshold", "confidence", "model"):
            _require(key in reply, f"verify: missing {key!r}", reply)
        _require(isinstance(reply["verified"], bool), "verify: verified is not a bool", reply)
        _require(_is_number(reply["distance"]), "verify: distance is not a number", reply)
        _require(_is_number(reply["threshold"]), "verify: threshold is not a number", reply)
        _require(0.0 <= reply["confidence"] <= 1.0, "verify: confidence outside [0, 1]", reply)
        _require(isinstance(reply["model"], str), "verify: model is not a string", reply)
        _require(_is_number(reply.get("processing_time_ms")), "verify: processing_time_ms", reply)
        if threshold is not None:
            _require(reply["threshold"] == threshold, "verify: threshold not echoed", reply)
        _require(
            reply["verified"] == (reply["distance"] <= reply["threshold"]),
            "verify: verified disagrees with distance <= threshold",
            reply,
        )
        return reply

    def register(
        self,
        audio: str,
        name: str,
        labels: dict[str, str] | None = None,
        store: str | None = None,
    ) -> dict[str, Any]:
        reply = self._post_object(
            "register", {"audio": audio, "name": name, "labels": labels, "store": store}
        )
        _require({"id", "name", "registered_at"} <= set(reply), "register: missing fields", reply)
        _require(isinstance(reply["id"], str) and reply["id"], "register: id", reply)
        _require(reply["name"] == name, "register: name not echoed", reply)
        _require(isinstance(reply["registered_at"], str), "register: registered_at", reply)
        return reply

    def identify(
        self,
        audio: str,
        top_k: int | None = None,
        threshold: float | None = None,
        store: str | None = None,
    ) -> list[dict[str, Any]]:
        status, reply = self._post(
            "identify", {"audio": audio, "top_k": top_k, "threshold": threshold, "store": store}
        )
        _require(status == 200, f"identify: expected HTTP 200, got {status}", reply)
        matches = reply.get("matches") if isinstance(reply, dict) else reply
        _require(isinstance(matches, list), "identify: no list of matches", reply)
        _require(len(matches) <= (top_k or 5), "identify: more matches than top_k", reply)
        for match in matches:
            for key in ("id", "name", "labels", "distance", "confidence", "match"):
                _require(key in match, f"identify: a match lacks {key!r}", reply)
            _require(isinstance(match["labels"], dict), "identify: labels is not a map", reply)
            _require(isinstance(match["match"], bool), "identify: match is not a bool", reply)
            _require(0.0 <= match["confidence"] <= 1.0, "identify: confidence range", reply)
            if threshold is not None:
                _require(
                    match["match"] == (match["distance"] <= threshold),
                    "identify: match disagrees with distance <= threshold",
                    reply,
                )
        distances = [m["distance"] for m in matches]
        _require(distances == sorted(distances), "identify: not sorted by distance", reply)
        return matches

    def forget(self, id: str) -> None:  # `id`: the seed's field name
        """204 on success; an unknown id raises VoiceAPIError with status 404."""
        status, reply = self._post("forget", {"id": id})
        _require(status == 204, f"forget: expected 204 No Content, got {status}", reply)

    def embed(self, audio: str) -> dict[str, Any]:
        reply = self._post_object("embed", {"audio": audio})
        _require({"embedding", "dim", "model"} <= set(reply), "embed: missing fields", reply)
        vector = reply["embedding"]
        _require(isinstance(vector, list) and vector, "embed: embedding is not a list", reply)
        _require(all(_is_number(x) for x in vector), "embed: embedding is not floats", reply)
        _require(reply["dim"] == len(vector), "embed: dim differs from len(embedding)", reply)
        _require(isinstance(reply["model"], str), "embed: model is not a string", reply)
        norm = math.sqrt(sum(x * x for x in vector))
        _require(abs(norm - 1.0) < 1e-3, f"embed: not L2-normalised (norm {norm})", reply)
        return reply

    def analyze(self, audio: str, actions: list[str] | None = None) -> dict[str, Any]:
        """The attributes the server could compute; 501 (VoiceAPIError) when none."""
        reply = self._post_object("analyze", {"audio": audio, "actions": actions})
        asked = actions or list(ATTRIBUTES)
        present = [a for a in ATTRIBUTES if a in reply]
        _require(present, "analyze: no attribute in a 200 reply", reply)
        _require(set(present) <= set(asked), "analyze: an attribute that was not asked", reply)
        return reply


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
