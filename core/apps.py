"""The platform core as a Django app: registers the settings checks when Django starts."""

from django.apps import AppConfig
from django.core import checks


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Platform core"

    def ready(self) -> None:
        from core.checks import SETTINGS_CHECKS

        for check in SETTINGS_CHECKS:
            checks.register(check)
