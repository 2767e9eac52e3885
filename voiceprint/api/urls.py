"""Routes of the voice endpoints under /v1/voiceprint/."""

from django.urls import path

from voiceprint.api import views

urlpatterns = [
    path("voices/create", views.VoiceCreateView.as_view(), name="voice-create"),
    path("voices/identify", views.VoiceIdentifyView.as_view(), name="voice-identify"),
    path("voices", views.VoiceListView.as_view(), name="voices"),
    path("voices/<str:voice_id>", views.VoiceDetailView.as_view(), name="voice-detail"),
    path("voicesbind/<str:voice_id>", views.VoiceBindView.as_view(), name="voice-bind"),
    path("voices/<str:voice_id>/samples", views.VoiceSamplesView.as_view(), name="voice-samples"),
    path(
        "voices/<str:voice_id>/samples/<str:index>",
        views.VoiceSampleDetailView.as_view(),
        name="voice-sample",
    ),
    path("voices/<str:voice_id>/audio", views.VoiceAudioView.as_view(), name="voice-audio"),
    path("voices/<str:voice_id>/export", views.VoiceExportView.as_view(), name="voice-export"),
    path("voices/<str:voice_id>/verify", views.VoiceVerifyView.as_view(), name="voice-verify"),
    path("features/extract", views.FeatureExtractView.as_view(), name="features-extract"),
]
