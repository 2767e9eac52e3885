"""Console: roles."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count

from console.scoping import TenantScopedAdminMixin
from roles.models import Role
from roles.services import role_delete


@admin.register(Role)
class RoleAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "tenant", "is_default", "voice_count", "role_id", "created_at")
    list_filter = ("tenant", "is_default")
    list_select_related = ("tenant",)
    search_fields = ("name", "role_id", "tenant__name")
    fields = ("tenant", "name", "role_id", "is_default", "created_at", "updated_at")
    readonly_fields = ("role_id", "is_default", "created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(voice_count=Count("voices"))

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return ("tenant", *fields) if obj else fields

    @admin.display(description="voices", ordering="voice_count")
    def voice_count(self, role: Role) -> int:
        return role.voice_count

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        role_delete(obj)

    def delete_queryset(self, request, queryset):
        # A selection with a default role never gets here: has_delete_permission refuses it.
        for role in queryset.filter(is_default=False):
            role_delete(role)
