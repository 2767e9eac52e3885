"""The Celery application. Configuration comes from Django settings (CELERY_* names).

The worker logs through `settings.LOGGING`, like the web process: JSON lines (or plain text)
with redaction (config.logs), at LOG_LEVEL; the worker's --loglevel is not used.
"""

import logging.config
import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("voiceprint")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _log_like_the_web_process(**kwargs) -> None:
    """Connected at all, this signal stops Celery from installing its own handlers and
    format (which would print task results, embeddings included, unredacted)."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
