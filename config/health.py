"""GET /healthz: is the service able to work? No authentication.

Each part (database, broker, embedding worker, engine) is "ok" or "down"; any part down makes
the whole "degraded" (503). The worker part is the last answer of the workers on our
queue (at most a few seconds old), because a broker with nobody consuming it answers every
embedding with 50300 after the full VOICEPRINT_EMBED_TIMEOUT.

Callers are unauthenticated, so the engine part shows no file system paths and no download
instructions: the full detail goes to the log (engine.registry logs a fallback; this module
logs a missing engine, once per distinct reason) and, through `service_status()`, to
superusers on the console's dashboard.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)

#: How long one answer from the workers is reused, and how long to wait for it.
WORKER_STATUS_SECONDS = 5.0
WORKER_REPLY_TIMEOUT = 1.0


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
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"status": "ok", "mode": "celery"}
    except Exception as exc:
        logger.warning("health: broker unreachable: %s", exc.__class__.__name__)
        return {"status": "down", "mode": "celery"}


# --- embedding workers -------------------------------------------------------------------


class _WorkerProbe:
    """What the workers on one queue answered last, asked again in the background once the
    answer is WORKER_STATUS_SECONDS old. Asking costs the whole WORKER_REPLY_TIMEOUT
    (inspect() waits for every worker's reply), which a probe should not pay; only the
    first call, with no answer yet, waits for one. (A shorter timeout saw a busy machine's
    idle worker as down.)"""

    def __init__(self, app, queue: str):
        self.app, self.queue = app, queue
        self.answer: dict = {"status": "down", "workers": 0}  # until one answers
        self.answered_at = float("-inf")
        self.asking = False
        self.first_answer = threading.Event()
        self.lock = threading.Lock()

    def status(self) -> dict:
        with self.lock:
            due = time.monotonic() - self.answered_at >= WORKER_STATUS_SECONDS
            if due and not self.asking:
                self.asking = True
                threading.Thread(target=self._ask, name="health-workers", daemon=True).start()
        self.first_answer.wait(timeout=WORKER_REPLY_TIMEOUT + 5)
        return self.answer

    def _ask(self) -> None:
        try:
            answer = _ask_workers(self.app, queue=self.queue)
            with self.lock:
                self.answer, self.answered_at = answer, time.monotonic()
        finally:
            with self.lock:
                self.asking = False
            self.first_answer.set()


_probes_lock = threading.Lock()
_probes: dict[tuple[str, str], _WorkerProbe] = {}


def _worker_status(broker: dict) -> dict:
    """Workers consuming our queue: {"status", "workers"}; in-process mode needs none."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"status": "ok", "mode": "in-process"}
    if broker["status"] != "ok":
        return {"status": "down", "workers": 0}
    from config.celery import app

    # One probe per broker and queue: an answer about another configuration is no answer.
    key = (str(app.conf.broker_url), app.conf.task_default_queue)
    with _probes_lock:
        probe = _probes.setdefault(key, _WorkerProbe(app, queue=key[1]))
    return probe.status()


def _ask_workers(app, *, queue: str) -> dict:
    try:
        replies = app.control.inspect(timeout=WORKER_REPLY_TIMEOUT).active_queues() or {}
    except Exception as exc:
        logger.warning("health: workers unreachable: %s", exc.__class__.__name__)
        return {"status": "down", "workers": 0}
    workers = sum(
        1 for queues in replies.values() if any(q.get("name") == queue for q in queues or ())
    )
    if not workers:
        logger.warning("health: no embedding worker consumes the queue %r", queue)
    return {"status": "ok" if workers else "down", "workers": workers}


# --- engine ------------------------------------------------------------------------------

# An absolute path (POSIX or Windows): everything up to its last component.
_DIRECTORIES = re.compile(
    r"(?<![^\s('\"])(?:[A-Za-z]:)?[/\\](?:[^\s/\\()'\"]+[/\\])*(?=[^\s/\\()'\"])"
)
_logged_engine_problems: set[str] = set()


def _engine_status() -> dict[str, Any]:
    import engine

    return engine.engine_status()


def _public_engine(status: dict[str, Any]) -> dict[str, Any]:
    """`status` without file system paths or download instructions; those are logged."""
    public = {key: status.get(key) for key in ("name", "dim", "decisions")}
    if status.get("runtime"):  # an int8 refusal may quote an exception naming a file
        public["runtime"] = {
            key: _DIRECTORIES.sub("", value) if isinstance(value, str) else value
            for key, value in status["runtime"].items()
        }
    public["source"] = _DIRECTORIES.sub("", status["source"]) if status.get("source") else None
    if "fallback_reason" in status:  # engine.registry logged it when it chose the fallback
        public["requested"] = status.get("requested")
        public["fallback_reason"] = f"engine {status.get('requested')!r} unavailable; see the log"
    if "error" in status:
        _log_engine_problem(f"no speaker engine: {status['error']}")
        public["error"] = "no speaker engine could be loaded; see the log"
    return public


def _log_engine_problem(message: str) -> None:
    if message not in _logged_engine_problems:  # probes come every few seconds
        _logged_engine_problems.add(message)
        logger.warning("health: %s", message)


# --- the whole ---------------------------------------------------------------------------


def service_status() -> dict[str, Any]:
    """Every part with its full detail (the engine's paths and reasons included), and the
    overall "ok" or "degraded"."""
    database, broker = _database_status(), _broker_status()
    worker, engine = _worker_status(broker), _engine_status()
    healthy = all(part["status"] == "ok" for part in (database, broker, worker))
    return {
        "status": "ok" if healthy and engine.get("name") else "degraded",
        "engine": engine,
        "database": database,
        "broker": broker,
        "worker": worker,
    }


def healthz(request: HttpRequest) -> JsonResponse:
    body = service_status()
    body["engine"] = _public_engine(body["engine"])
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
