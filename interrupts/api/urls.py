"""Routes of the role-interrupt endpoints under /v1/voiceprint/."""

from django.urls import path

from interrupts.api import views

urlpatterns = [
    path("roleinterrupt/<str:agent_id>", views.RoleInterruptView.as_view(), name="roleinterrupt"),
]
