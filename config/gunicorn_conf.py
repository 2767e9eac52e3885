"""gunicorn settings for `make run` (config/serve.py starts gunicorn with this file).

Workers and threads come from Django settings (VOICEPRINT_WEB_WORKERS, _THREADS, _TIMEOUT).
The access log is our own (config.middleware: route, status, business code, request id;
never the query string), so gunicorn's is off.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings

# Imported here, not in child_exit: that hook runs in a signal handler, possibly while the
# master is halfway through importing prometheus_client itself.
from prometheus_client import multiprocess

from utilities.env import env_str

worker_class = "config.gunicorn_worker.EnvelopeThreadWorker"
workers = settings.VOICEPRINT_WEB_WORKERS
threads = settings.VOICEPRINT_WEB_THREADS
timeout = settings.VOICEPRINT_WEB_TIMEOUT
graceful_timeout = 10
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = settings.LOG_LEVEL.lower()
# Request line and header limits: the worker answers a request beyond them in the API's
# own reply shape (config.gunicorn_worker).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
#: Seconds a worker leaving gives its WebSocket connections to close (within graceful_timeout).
WEBSOCKET_CLOSE_TIMEOUT = 5.0


def post_worker_init(worker) -> None:
    """Load the in-process speaker engine once per worker, before its first request."""
    import engine

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        engine.apply_thread_settings()  # it still scores with numpy
        return  # Celery workers embed; this process only queues

    try:
        engine.active_engine()
    except engine.EngineError as exc:
        worker.log.warning("speaker engine not loaded: %s", exc)


def child_exit(server, worker) -> None:
    """Drop a dead worker's live gauges from the shared metrics folder."""
    if env_str("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker) -> None:
    """Tell this worker's WebSocket clients the server is going away (close 1001), inside
    the master's graceful_timeout. It runs in the worker, on SIGTERM after the in-flight
    HTTP requests, on SIGINT/SIGQUIT at once."""
    worker.shutdown_websockets(timeout=WEBSOCKET_CLOSE_TIMEOUT)
