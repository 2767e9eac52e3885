"""Routes of the role endpoints under /v1/voiceprint/."""

from django.urls import path

from roles.api import views

urlpatterns = [
    path("roles", views.RoleListView.as_view(), name="roles"),
    path("roles/<str:role_id>", views.RoleDetailView.as_view(), name="role-detail"),
]
