"""GET /metrics: Prometheus text format, request latency by route, embedding and identify
metrics, queue wait of worker jobs."""

from __future__ import annotations

import base64
import time

import pytest
from prometheus_client import REGISTRY

from tests.helpers import VP, envelope
from tests.voiceprint.conftest import ENGINE, create_device, enroll, identify

METRIC_FAMILIES = (
    "voiceprint_http_request_duration_seconds",
    "voiceprint_http_business_errors_total",
    "voiceprint_embedding_duration_seconds",
    "voiceprint_embedding_queue_wait_seconds",
    "voiceprint_embedding_batch_size",
    "voiceprint_identify_total",
    "voiceprint_identify_matched_total",
)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client, **headers) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content[:200]
    return response.content.decode()


class TestEndpoint:
    def test_answers_prometheus_text_without_a_token(self, client):
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=0.0.4")
        body = response.content.decode()
        for family in METRIC_FAMILIES:
            assert f"# TYPE {family.removesuffix('_total')}" in body, family

    def test_metrics_token_protects_it_when_set(self, client, settings):
        settings.VOICEPRINT_METRICS_TOKEN = "s3cret-scraper"
        assert client.get("/metrics").status_code == 401
        bad = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
        assert bad.status_code == 401
        assert "voiceprint_" in scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-scraper")

    def test_only_get_and_head(self, client):
        assert client.post("/metrics").status_code == 405


@pytest.mark.django_db
class TestRequestMetrics:
    def test_latency_is_labelled_by_route_never_by_path(self, api, client):
        voice_id = "0123456789abcdef01234567"
        route = "v1/voiceprint/voices/<str:voice_id>"
        before = sample(
            "voiceprint_http_request_duration_seconds_count",
            method="GET",
            route=route,
            status="2xx",
        )
        envelope(api.get(VP + f"voices/{voice_id}"), 40400)
        after = sample(
            "voiceprint_http_request_duration_seconds_count",
            method="GET",
            route=route,
            status="2xx",
        )
        assert after == before + 1
        body = scrape(client)
        assert voice_id not in body
        assert f'route="{route}"' in body

    def test_business_errors_are_counted_by_code(self, api):
        labels = {"route": "v1/voiceprint/devices/<str:device_id>", "code": "40400"}
        before = sample("voiceprint_http_business_errors_total", **labels)
        envelope(api.get(VP + "devices/missing"), 40400)
        assert sample("voiceprint_http_business_errors_total", **labels) == before + 1

    def test_unknown_urls_share_one_label(self, api, client):
        api.get("/v1/voiceprint/no/such/endpoint/abc123")
        body = scrape(client)
        assert 'route="unmatched"' in body
        assert "abc123" not in body


@pytest.mark.django_db
@pytest.mark.slow
class TestRecognitionMetrics:
    def test_identify_counts_and_embedding_time(self, api, media_root, enroll_audio, probe_audio):
        create_device(api, "dev-1")
        assert enroll(api, enroll_audio, "dev-1", voice_name="fangjun")["model"] == ENGINE
        identified = {"model": ENGINE, "surface": "device"}
        embedded = {"engine": ENGINE, "mode": "in-process"}
        counts = (
            sample("voiceprint_identify_total", **identified),
            sample("voiceprint_identify_matched_total", **identified),
            sample("voiceprint_embedding_duration_seconds_count", **embedded),
            sample("voiceprint_embedding_batch_size_count", **embedded),
            sample("voiceprint_embedding_batch_size_sum", **embedded),
        )

        result = identify(api, probe_audio, "dev-1")

        assert result["matched"] is True
        assert sample("voiceprint_identify_total", **identified) == counts[0] + 1
        assert sample("voiceprint_identify_matched_total", **identified) == counts[1] + 1
        assert sample("voiceprint_embedding_duration_seconds_count", **embedded) == counts[2] + 1
        assert sample("voiceprint_embedding_duration_seconds_sum", **embedded) > 0
        # One request at a time: embedded alone.
        assert sample("voiceprint_embedding_batch_size_count", **embedded) == counts[3] + 1
        assert sample("voiceprint_embedding_batch_size_sum", **embedded) == counts[4] + 1

    def test_voice_api_identify_is_counted_per_store_surface(self, api, probe_audio):
        labels = {"model": ENGINE, "surface": "store"}
        counts = (
            sample("voiceprint_identify_total", **labels),
            sample("voiceprint_identify_total", model=ENGINE, surface="device"),
        )
        body = {"audio": base64.b64encode(probe_audio).decode()}
        reply = api.post("/v1/voice/identify", body, format="json")
        assert reply.status_code == 200, reply.content[:200]
        assert sample("voiceprint_identify_total", **labels) == counts[0] + 1
        assert sample("voiceprint_identify_total", model=ENGINE, surface="device") == counts[1]


class TestWorkerTimings:
    """With a broker, the worker reports when it started and how long it embedded."""

    def test_queue_wait_and_worker_embedding_time(self, settings, monkeypatch):
        from voiceprint import embedding

        settings.CELERY_TASK_ALWAYS_EAGER = False
        worker_payload = {
            "vector": [1.0, 0.0],
            "model": "fake-engine",
            "dim": 2,
            "speech_seconds": 2.0,
            "duration_seconds": 2.5,
            "quality": {"speech_seconds": 2.0, "snr_db": 20.0, "clipping": 0.0},
            "embed_seconds": 0.25,
            "batch_size": 3,
        }

        class Pending:
            def get(self, timeout, propagate):
                return {**worker_payload, "started_at": time.time() + 0.5}

            def forget(self):
                pass

        monkeypatch.setattr(embedding.embed_audio_task, "apply_async", lambda **kw: Pending())
        monkeypatch.setattr(embedding.job_audio, "put", lambda audio, ttl_seconds: "job-key")
        monkeypatch.setattr(embedding.job_audio, "discard", lambda key: None)
        embedded = {"engine": "fake-engine", "mode": "celery"}
        waits = sample("voiceprint_embedding_queue_wait_seconds_count")
        waited = sample("voiceprint_embedding_queue_wait_seconds_sum")
        count = sample("voiceprint_embedding_duration_seconds_count", **embedded)
        seconds = sample("voiceprint_embedding_duration_seconds_sum", **embedded)
        batched = sample("voiceprint_embedding_batch_size_sum", **embedded)

        result = embedding.compute_embedding(b"RIFF")

        assert result.model == "fake-engine"
        assert sample("voiceprint_embedding_queue_wait_seconds_count") == waits + 1
        assert sample("voiceprint_embedding_queue_wait_seconds_sum") - waited >= 0.4
        assert sample("voiceprint_embedding_duration_seconds_count", **embedded) == count + 1
        assert sample("voiceprint_embedding_duration_seconds_sum", **embedded) == pytest.approx(
            seconds + 0.25
        )
        assert result.batch_size == 3
        assert sample("voiceprint_embedding_batch_size_sum", **embedded) == batched + 3

    def test_queue_wait_is_exported_before_any_job(self):
        count = REGISTRY.get_sample_value("voiceprint_embedding_queue_wait_seconds_count")
        assert count is not None


def test_metrics_are_per_process_unless_multiproc_dir(monkeypatch, tmp_path):
    from config import observability

    assert observability._registry() is REGISTRY
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert observability._registry() is not REGISTRY
