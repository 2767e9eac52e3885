"""Role interrupt: per AI agent, which roles may interrupt it."""

from django.apps import AppConfig


class InterruptsConfig(AppConfig):
    name = "interrupts"
    verbose_name = "Role interrupts"
