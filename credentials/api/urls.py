"""Routes of the token endpoints under /v1/voiceprint/."""

from django.urls import path

from credentials.api import views

urlpatterns = [
    path("tokens", views.TokenListView.as_view(), name="tokens"),
    path("tokens/<str:prefix>", views.TokenDetailView.as_view(), name="token-detail"),
]
