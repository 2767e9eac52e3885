"""A raw audio body sent chunked, without Content-Length, to the real server (gunicorn, as
`python -m config.serve` runs it): read like any raw body, and refused past 512 KB
without the rest of it ever being read.

Django reads a body without Content-Length as empty, so only a real server that de-chunks
the body shows this; the test client always sends a length."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.config.service import Service

pytestmark = pytest.mark.slow

RAW_BODY_LIMIT = 512 * 1024
CHUNK = 64 * 1024
#: How long a client waits for an answer: a bound on the wait, no speed requirement.
ANSWER_TIMEOUT = 60


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp("chunked") / "var").start(via_make=False)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def token(service) -> str:
    return service.create_tenant("chunked")


def request(
    service: Service, token: str, path: str, chunks: list[bytes], headers: dict[str, str]
) -> tuple[int, dict]:
    """POST `chunks` as they are (already framed, or a length-delimited body); the reply."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=ANSWER_TIMEOUT)
    try:
        connection.putrequest("POST", path)
        for name, value in {**headers, "Authorization": f"Bearer {token}"}.items():
            connection.putheader(name, value)
        connection.endheaders()
        for chunk in chunks:
            connection.send(chunk)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def chunked(body: bytes, *, finished: bool = True) -> list[bytes]:
    """`body` in HTTP/1.1 chunks; without the last (empty) chunk when not `finished`, as a
    client still sending would leave it."""
    pieces = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    framed = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]
    return framed + ([b"0\r\n\r\n"] if finished else [])


def raw_post(service, token, path: str, body: list[bytes], **headers: str) -> dict:
    """A raw audio body; `headers` as keywords (X_Device_ID: X-Device-ID)."""
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    status, reply = request(service, token, path, body, {"Content-Type": "audio/wav", **named})
    assert status == 200 and set(reply) == {"code", "msg", "data"}, (status, reply)
    return reply


def test_a_chunked_body_is_read_like_any_raw_body(service, token, shared_audio):
    audio = (shared_audio / "zh" / "enroll" / "fangjun-sr-1.wav").read_bytes()
    assert len(audio) > CHUNK  # several chunks
    path = "/v1/voiceprint/features/extract"
    as_chunks = raw_post(service, token, path, chunked(audio), Transfer_Encoding="chunked")
    with_length = raw_post(service, token, path, [audio], Content_Length=str(len(audio)))
    assert as_chunks["code"] == 0, as_chunks
    assert as_chunks["data"] == with_length["data"]


def test_a_chunked_body_over_512_kb_is_41300_before_it_ends(service, token, shared_audio):
    """The client sends more than 512 KB and then waits, the body unfinished: the answer
    can only come if the server stopped reading at the limit."""
    audio = (shared_audio / "zh" / "enroll" / "fangjun-sr-1.wav").read_bytes()
    big = audio + bytes(RAW_BODY_LIMIT + CHUNK - len(audio))
    _, devices = request(
        service,
        token,
        "/v1/voiceprint/devices",
        [b'{"device_id": "dev-1"}'],
        {"Content-Type": "application/json", "Content-Length": "22"},
    )
    assert devices["code"] == 0, devices
    for path in ("/v1/voiceprint/voices/create", "/v1/voiceprint/features/extract"):
        reply = raw_post(
            service,
            token,
            path,
            chunked(big, finished=False),
            Transfer_Encoding="chunked",
            X_Device_ID="dev-1",
        )
        assert reply["code"] == 41300, (path, reply)
    status, voices = service.get("/v1/voiceprint/voices", token)
    assert (status, voices["code"], voices["data"]) == (200, 0, [])
