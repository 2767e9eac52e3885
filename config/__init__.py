"""The Django project: settings, URLs, the Celery app, the web server launcher
(`serve`), health and metrics endpoints, logging, and the embedded PostgreSQL backend."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
