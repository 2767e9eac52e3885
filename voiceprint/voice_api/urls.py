"""Routes of the Voice API (/v1/voice/), compatible with the local inference server's."""

from django.urls import path

from voiceprint.voice_api import views

urlpatterns = [
    path("verify", views.VerifyView.as_view(), name="voice-verify-pair"),
    path("register", views.RegisterView.as_view(), name="voice-register"),
    path("identify", views.IdentifyView.as_view(), name="voice-identify-store"),
    path("forget", views.ForgetView.as_view(), name="voice-forget"),
    path("embed", views.EmbedView.as_view(), name="voice-embed"),
    path("analyze", views.AnalyzeView.as_view(), name="voice-analyze"),
]
