"""Request ids, JSON log lines, the access log, and what must never be logged."""

from __future__ import annotations

import base64
import io
import itertools
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from django.conf import settings as django_settings

from config.logs import JsonFormatter, RedactingFormatter, RequestIdFilter, redact
from tests.helpers import VP, envelope
from tests.voiceprint.conftest import create_device, enroll, identify, post_raw

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@contextmanager
def log_lines(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """Everything logged meanwhile (INFO and up), formatted as the console handler would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


class TestRequestId:
    def test_a_sane_request_id_is_echoed(self, client):
        response = client.get("/metrics", HTTP_X_REQUEST_ID="gw-42.abc_DEF")
        assert response["X-Request-ID"] == "gw-42.abc_DEF"

    def test_one_is_generated_when_missing(self, client):
        first, second = client.get("/metrics"), client.get("/metrics")
        assert GENERATED_ID.match(first["X-Request-ID"])
        assert first["X-Request-ID"] != second["X-Request-ID"]

    @pytest.mark.parametrize(
        "given", ["x" * 65, "has space", "semi;colon", "new\nline", "ünïcode", "<script>"]
    )
    def test_an_insane_one_is_replaced(self, client, given):
        response = client.get("/metrics", HTTP_X_REQUEST_ID=given)
        assert GENERATED_ID.match(response["X-Request-ID"])

    @pytest.mark.django_db
    def test_api_errors_carry_it_too(self, client):
        response = client.get(VP + "voices", HTTP_X_REQUEST_ID="req-1")
        envelope(response, 40100)
        assert response["X-Request-ID"] == "req-1"


@pytest.mark.django_db
class TestJsonLines:
    def test_every_line_is_json_with_the_request_id(self, api, tenant):
        with log_lines(JsonFormatter()) as stream:
            response = api.get(VP + "devices/missing", HTTP_X_REQUEST_ID="trace-123")
        envelope(response, 40400)
        entries = [json.loads(line) for line in stream.getvalue().splitlines()]
        (access,) = [e for e in entries if e["logger"] == "voiceprint.access"]
        assert access["request_id"] == "trace-123"
        assert access["method"] == "GET"
        assert access["route"] == "v1/voiceprint/devices/<str:device_id>"
        assert access["status"] == 200
        assert access["code"] == 40400
        assert access["tenant_id"] == tenant.pk
        assert isinstance(access["duration_ms"], float)
        assert access["level"] == "INFO" and access["time"].endswith("+00:00")

    def test_server_errors_logged_by_django_carry_the_request_id(self, api, monkeypatch):
        from voiceprint.voice_api import views

        def fail(*args, **kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(views, "voice_get", fail)
        with log_lines(JsonFormatter()) as stream:
            response = api.post(
                "/v1/voice/forget", {"id": "x"}, format="json", HTTP_X_REQUEST_ID="err-1"
            )
        assert response.status_code == 500
        entries = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert {e["logger"] for e in entries} >= {"django.request", "voiceprint.access"}
        assert {e["request_id"] for e in entries} == {"err-1"}

    def test_records_outside_a_request_have_a_placeholder_id(self, client):
        client.get("/metrics", HTTP_X_REQUEST_ID="over-1")
        with log_lines(JsonFormatter()) as stream:
            logging.getLogger("voiceprint.test").warning("outside %s", "any request")
        entry = json.loads(stream.getvalue())
        assert entry["message"] == "outside any request"
        assert entry["request_id"] == "-"

    def test_exceptions_are_one_line(self):
        with log_lines(JsonFormatter()) as stream:
            try:
                raise ValueError("boom")
            except ValueError:
                logging.getLogger("voiceprint.test").exception("failed")
        (line,) = stream.getvalue().splitlines()
        assert "ValueError: boom" in json.loads(line)["exc_info"]

    def test_plain_format_carries_the_request_id(self, client):
        formatter = RedactingFormatter("%(levelname)s [%(request_id)s] %(message)s")
        with log_lines(formatter) as stream:
            client.get("/v1/voice/nowhere", HTTP_X_REQUEST_ID="plain-1")
        assert "INFO [plain-1] GET unmatched 404" in stream.getvalue()

    def test_probes_are_logged_at_debug_only(self, client):
        with log_lines(JsonFormatter()) as stream:
            client.get("/metrics", HTTP_X_REQUEST_ID="probe-1")
        assert "probe-1" not in stream.getvalue()

    def test_json_is_the_default_unless_debug(self):
        if not os.environ.get("LOG_FORMAT"):
            assert django_settings.LOG_FORMAT == ("plain" if django_settings.DEBUG else "json")
        handler = django_settings.LOGGING["handlers"]["console"]
        assert handler["formatter"] == django_settings.LOG_FORMAT
        assert handler["filters"] == ["request_id"]


class TestRedaction:
    def test_tokens_keep_only_their_public_prefix(self):
        text = redact("token vp_0123abcd_S3cr3t-_value and Authorization: Bearer abc.def")
        assert "S3cr3t" not in text and "abc.def" not in text
        assert "vp_0123abcd_[REDACTED]" in text and "Bearer [REDACTED]" in text

    def test_long_base64_and_number_runs_are_masked(self):
        audio = base64.b64encode(bytes(range(256)) * 2).decode()
        numbers = ", ".join(f"{0.01 * i:.4f}" for i in range(40))
        text = redact(f"audio={audio} embedding=[{numbers}]")
        assert audio[:40] not in text
        assert "0.0100, 0.0200" not in text

    def test_numpy_printouts_and_byte_dumps_are_masked(self):
        vector = np.linspace(-1, 1, 40, dtype=np.float32)
        audio = bytes(range(128, 256)) * 4  # no printable bytes: all \\x escapes
        for shown in (str(vector), repr(vector), repr(audio), json.dumps(repr(audio))):
            text = redact(f"value={shown}")
            assert "[REDACTED" in text and not re.search(r"\d\.\d|x[89a-f][0-9a-f]", text), text

    def test_celery_task_arguments_and_results_are_not_logged(self):
        def task_record() -> logging.LogRecord:
            values = {
                "id": "task-1",
                "name": "voiceprint.embed_stored_audio",
                "runtime": 0.2,
                "return_value": "{'vector': [0.25]}",
                "args": "['job-audio-key']",
                "kwargs": "{}",
            }
            record = logging.LogRecord(
                "celery.app.trace",
                logging.INFO,
                __file__,
                1,
                "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
                (values,),
                None,
            )
            record.data = values  # what Celery passes as extra={"data": ...}
            return record

        for formatter in (JsonFormatter(), RedactingFormatter("%(message)s %(data)s")):
            line = formatter.format(task_record())
            assert "task-1" in line and "succeeded in 0.2s: [not logged]" in line
            assert "vector" not in line and "job-audio-key" not in line

    def test_a_logged_request_shows_no_query_string(self, rf):
        request = rf.get("/v1/voiceprint/voices", {"access_token": "s3cr3t"})
        record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "x", None, None)
        record.request = request  # what django.request passes in extra=
        entry = json.loads(JsonFormatter().format(record))
        assert entry["request"] == "GET /v1/voiceprint/voices"

    def test_redaction_keeps_json_valid(self):
        record = logging.LogRecord(
            "x", logging.INFO, __file__, 1, 'header "Bearer vp_0123abcd_zzz"', None, None
        )
        assert "[REDACTED]" in json.loads(JsonFormatter().format(record))["message"]


@pytest.mark.django_db
@pytest.mark.slow
def test_no_record_holds_the_token_audio_or_embedding(
    api, tenant_and_token, media_root, enroll_audio, probe_audio, caplog
):
    caplog.set_level(logging.DEBUG)
    for name in django_settings.LOGGING["loggers"]:
        caplog.set_level(logging.DEBUG, logger=name)
    token = tenant_and_token[1]
    probe_base64 = base64.b64encode(probe_audio).decode()

    create_device(api, "dev-1")
    enroll(api, enroll_audio, "dev-1", voice_name="fangjun")
    identify(api, probe_audio, "dev-1")
    extracted = envelope(
        api.post(VP + "features/extract", {"audio_base64": probe_base64}, format="json")
    )
    embedded = api.post("/v1/voice/embed", {"audio": probe_base64}, format="json").json()
    envelope(post_raw(api, "voices/identify", b"not audio", device_id="dev-1"), 40002)

    assert caplog.records, "the access log should have written something"
    logged = "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records)
    assert token not in logged
    # The secret is everything after the prefix; it may itself hold "_".
    secret = token.split("_", 2)[2]
    assert secret not in logged
    for audio in (enroll_audio, probe_audio):
        assert base64.b64encode(audio).decode()[:64] not in logged
    for vector in (extracted["embedding"], embedded["embedding"]):
        for first, second in itertools.pairwise(vector):
            assert f"{first}, {second}" not in logged


def test_the_access_log_never_evaluates_a_lazy_session_user(rf):
    from django.utils.functional import SimpleLazyObject

    from config.middleware import tenant_id_of

    def evaluate():
        raise AssertionError("the session user was loaded")

    request = rf.get("/healthz")
    request.user = SimpleLazyObject(evaluate)
    assert tenant_id_of(request) is None
