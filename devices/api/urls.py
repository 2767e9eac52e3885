"""Routes of the device endpoints under /v1/voiceprint/."""

from django.urls import path

from devices.api import views

urlpatterns = [
    path("devices", views.DeviceListView.as_view(), name="devices"),
    path("devices/<str:device_id>", views.DeviceDetailView.as_view(), name="device-detail"),
]
