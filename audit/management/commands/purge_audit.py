"""Delete audit events older than VOICEPRINT_AUDIT_RETENTION_DAYS (run it daily, e.g. from
cron)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from audit.services import audit_purge


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options):
        deleted = audit_purge()
        days = settings.VOICEPRINT_AUDIT_RETENTION_DAYS
        self.stdout.write(f"{deleted} audit event(s) older than {days} days deleted.")
