import pytest


@pytest.mark.django_db
class TestHealth:
    def test_healthz_needs_no_token_and_reports_each_part(self, client):
        response = client.get("/healthz")
        body = response.json()
        assert body["database"]["status"] == "ok"
        assert body["database"]["pgvector"]
        assert body["broker"]["status"] in {"ok", "down"}
        assert {"name", "dim", "source"} <= set(body["engine"])
        assert response.status_code == (200 if body["status"] == "ok" else 503)

    def test_broker_down_is_reported(self, client, settings):
        settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
        body = client.get("/healthz").json()
        assert body["broker"]["status"] == "down"
        assert body["status"] == "degraded"


@pytest.mark.django_db
class TestApiDocs:
    def test_schema_lists_the_voiceprint_endpoints(self, client):
        response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        assert response.status_code == 200
        paths = response.json()["paths"]
        for path in ("/v1/voiceprint/roles", "/v1/voiceprint/devices/{device_id}",
                     "/v1/voiceprint/roleinterrupt/{agent_id}"):
            assert path in paths

    def test_swagger_ui_is_served_locally(self, client):
        page = client.get("/api/docs/")
        assert page.status_code == 200
        html = page.content.decode()
        assert "swagger-ui" in html
        assert "cdn" not in html.lower()
        static = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
        assert static.status_code == 200
