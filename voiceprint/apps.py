from django.apps import AppConfig


class VoiceprintConfig(AppConfig):
    name = "voiceprint"
    verbose_name = "Voiceprints"
