"""Routes of the Voice API (/v1/voice/), compatible with the local inference server's."""

from django.urls import path

from voiceprint.voice_api import views

urlpatterns = [
    path("verify", views.PairVerifyView.as_view(), name="voice-verify-pair"),
    path("register", views.VoiceRegisterView.as_view(), name="voice-register"),
    path("identify", views.StoreIdentifyView.as_view(), name="voice-identify-store"),
    path("forget", views.VoiceForgetView.as_view(), name="voice-forget"),
    path("embed", views.RecordingEmbedView.as_view(), name="voice-embed"),
    path("analyze", views.RecordingAnalyzeView.as_view(), name="voice-analyze"),
]
