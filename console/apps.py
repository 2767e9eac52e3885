from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class ConsoleConfig(AppConfig):
    """Templates, static files and views of the console; keeps the operators' group."""

    default = True
    name = "console"
    verbose_name = "Voiceprint console"

    def ready(self) -> None:
        from console.permissions import ensure_operator_group

        post_migrate.connect(ensure_operator_group, sender=self)


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """`django.contrib.admin` with the console as its default site (replaces it in
    INSTALLED_APPS), so `admin.site` and every `admin.register` use the console."""

    default = False  # "console" means ConsoleConfig; this one is named explicitly

    default_site = "console.sites.ConsoleAdminSite"
