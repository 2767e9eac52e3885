"""Voiceprint: voices, samples, device bindings, identify / verify / extract, both API surfaces."""

from django.apps import AppConfig


class VoiceprintConfig(AppConfig):
    name = "voiceprint"
    verbose_name = "Voiceprints"
