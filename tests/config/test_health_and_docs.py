import json
import re

import pytest
from django.urls import reverse

import engine
from engine import EngineSettings
from engine.scoring import scoring_status


@pytest.fixture
def engine_without_weights(tmp_path):
    """The preferred engine's weights are missing: the GE2E fallback is active, and the
    reason names directories and says what to download."""
    empty = tmp_path / "models"
    empty.mkdir()
    engine.configure(EngineSettings(engine="eres2net", model_dir=str(empty)))
    yield empty
    engine.configure(None)


@pytest.fixture
def no_engine(tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    engine.configure(EngineSettings(engine="eres2net", fallback="", model_dir=str(empty)))
    yield empty
    engine.configure(None)


ABSOLUTE_PATH = re.compile(r"(?:^|[\s('\"])(?:[A-Za-z]:)?[/\\][\w.]")


def assert_no_paths_or_instructions(body: dict, directory) -> None:
    text = json.dumps(body)
    assert str(directory) not in text and not ABSOLUTE_PATH.search(text), text
    assert "download" not in text.lower() and "VOICEPRINT_MODEL_DIR" not in text


@pytest.mark.django_db
class TestHealth:
    def test_healthz_needs_no_token_and_reports_each_part(self, client):
        response = client.get("/healthz")
        body = response.json()
        assert body["database"]["status"] == "ok"
        assert body["database"]["pgvector"]
        assert body["broker"]["status"] in {"ok", "down"}
        assert body["worker"]["status"] in {"ok", "down"}
        assert {"name", "dim", "source"} <= set(body["engine"])
        assert body["engine"]["runtime"] == {"runtime": "torch"}  # ge2e: how it runs
        assert response.status_code == (200 if body["status"] == "ok" else 503)

    def test_healthz_says_whether_decisions_are_calibrated(self, client):
        """ge2e ships its cohort and calibration; an engine without them keeps the raw rule."""
        body = client.get("/healthz").json()
        decisions = body["engine"]["decisions"]
        assert body["engine"]["name"] == "ge2e"
        assert decisions["calibrated"] is True and decisions["cohort_size"] > 0
        uncalibrated = scoring_status("campplus")
        assert uncalibrated["calibrated"] is False and "raw cosine" in uncalibrated["rule"]

    def test_in_process_embedding_needs_no_worker(self, client, settings):
        settings.CELERY_TASK_ALWAYS_EAGER = True
        body = client.get("/healthz").json()
        assert body["worker"] == {"status": "ok", "mode": "in-process"}

    def test_broker_down_is_reported(self, client, settings):
        settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
        body = client.get("/healthz").json()
        assert body["broker"]["status"] == "down"
        assert body["status"] == "degraded"

    def test_a_fallback_is_shown_without_paths_or_download_instructions(
        self, client, engine_without_weights, caplog
    ):
        caplog.set_level("WARNING")
        body = client.get("/healthz").json()
        assert body["engine"]["name"] == "ge2e" and body["engine"]["requested"] == "eres2net"
        assert "eres2net" in body["engine"]["fallback_reason"]
        assert body["engine"]["source"]  # where the weights came from, without directories
        assert_no_paths_or_instructions(body, engine_without_weights)
        assert "modelscope download" in caplog.text  # the instructions went to the log

    def test_no_engine_is_degraded_and_still_shows_no_paths(self, client, no_engine, caplog):
        caplog.set_level("WARNING")
        response = client.get("/healthz")
        body = response.json()
        assert response.status_code == 503 and body["status"] == "degraded"
        assert body["engine"]["name"] is None and body["engine"]["error"]
        assert_no_paths_or_instructions(body, no_engine)
        assert "modelscope download" in caplog.text

    def test_superusers_see_the_full_detail_on_the_console(
        self, client, django_user_model, engine_without_weights
    ):
        staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
        client.force_login(staff)
        assert "service" not in client.get(reverse("admin:index")).context
        root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
        client.force_login(root)
        page = client.get(reverse("admin:index"))
        service = page.context["service"]
        assert service["engine"] == engine.engine_status()
        assert service["engine"]["source"] == engine.active_engine().source  # a full path
        assert "modelscope download" in service["engine"]["fallback_reason"]
        html = page.content.decode()
        assert "modelscope download" in html and engine.active_engine().source in html


@pytest.mark.django_db
class TestApiDocs:
    def test_schema_lists_the_voiceprint_endpoints(self, client):
        response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        assert response.status_code == 200
        paths = response.json()["paths"]
        for path in (
            "/v1/voiceprint/roles",
            "/v1/voiceprint/devices/{device_id}",
            "/v1/voiceprint/roleinterrupt/{agent_id}",
        ):
            assert path in paths

    def test_swagger_ui_is_served_locally(self, client):
        page = client.get("/api/docs/")
        assert page.status_code == 200
        html = page.content.decode()
        assert "swagger-ui" in html
        assert "cdn" not in html.lower()
        static = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
        assert static.status_code == 200
