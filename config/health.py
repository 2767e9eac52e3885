"""GET /healthz: is the service able to work? No authentication."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def _database_status() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
        return {"status": "ok", "pgvector": row[0] if row else None}
    except Exception as exc:  # any failure means "down"; the reason is logged, not shown
        logger.warning("health: database unreachable: %s", exc.__class__.__name__)
        return {"status": "down"}


def _broker_status() -> dict:
    if not settings.CELERY_BROKER_URL:
        return {"status": "ok", "mode": "in-process"}
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"status": "ok", "mode": "celery"}
    except Exception as exc:
        logger.warning("health: broker unreachable: %s", exc.__class__.__name__)
        return {"status": "down", "mode": "celery"}


def _engine_status() -> dict:
    import engine

    return engine.engine_status()


def healthz(request: HttpRequest) -> JsonResponse:
    database, broker, engine = _database_status(), _broker_status(), _engine_status()
    healthy = database["status"] == "ok" and broker["status"] == "ok" and engine.get("name")
    body = {
        "status": "ok" if healthy else "degraded",
        "engine": engine,
        "database": database,
        "broker": broker,
    }
    return JsonResponse(body, status=200 if healthy else 503)
