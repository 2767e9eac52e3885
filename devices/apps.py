"""Devices: the speakers and robots of a tenant, named by client-chosen ids."""

from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Devices"
