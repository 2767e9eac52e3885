"""The console app, and django.contrib.admin configured with the console as its site."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    """Templates, static files, views and the operators' group (a data migration)."""

    default = True
    name = "console"
    verbose_name = "Voiceprint console"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """`django.contrib.admin` with the console as its default site (replaces it in
    INSTALLED_APPS), so `admin.site` and every `admin.register` use the console."""

    default = False  # "console" means ConsoleConfig; this one is named explicitly

    default_site = "console.sites.ConsoleAdminSite"
