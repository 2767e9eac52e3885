"""The URL map: the two API surfaces, health, metrics, the OpenAPI schema and docs, and
the console."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz
from config.observability import metrics
from core.envelope import VOICE_PREFIX, VOICEPRINT_PREFIX

voiceprint_api = [
    path("", include("roles.api.urls")),
    path("", include("devices.api.urls")),
    path("", include("interrupts.api.urls")),
    path("", include("voiceprint.api.urls")),
    path("", include("credentials.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path(VOICEPRINT_PREFIX.lstrip("/"), include(voiceprint_api)),
    path(VOICE_PREFIX.lstrip("/"), include("voiceprint.voice_api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
]

# Errors raised before or outside the API views keep the API's reply shape under its prefixes.
handler400 = "core.middleware.bad_request"
handler500 = "core.middleware.server_error"
