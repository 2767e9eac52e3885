"""Console: devices, their statistics and the voices bound to them."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, F, FloatField
from django.db.models.functions import Cast, NullIf
from django.urls import reverse
from django.utils.html import format_html

from console.admin_utils import admin_links, adopt
from console.scoping import TenantScopedAdminMixin
from devices.models import Device
from devices.services import device_create, device_delete, device_update


@admin.register(Device)
class DeviceAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = (
        "device_id",
        "device_name",
        "tenant",
        "voice_count",
        "identifies",
        "matches",
        "match_rate",
        "last_identify_at",
        "household_link",
        "identify_link",
    )
    list_filter = ("tenant", "last_identify_at")
    list_select_related = ("tenant",)
    search_fields = ("device_id", "device_name", "tenant__name")
    readonly_fields = (
        "voice_count",
        "identify_count",
        "matched_count",
        "match_rate",
        "last_identify_at",
        "bound_voices",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("tenant", "device_id", "device_name", "anti_spoofing")}),
        (
            "Statistics",
            {
                "fields": (
                    "voice_count",
                    "identify_count",
                    "matched_count",
                    "match_rate",
                    "last_identify_at",
                )
            },
        ),
        (
            "Voices",
            {
                "fields": ("bound_voices",),
                "description": "Bind or unbind voices on each voice's page.",
            },
        ),
        ("History", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    change_form_template = "console/device_change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(voice_count=Count("bindings"))

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        # The device_id is the firmware's own key: it is chosen once, like the tenant.
        return ("tenant", "device_id", *fields) if obj else fields

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj else self.fieldsets[:1]

    @admin.display(description="voices", ordering="voice_count")
    def voice_count(self, device: Device) -> int:
        return device.voice_count

    @admin.display(description="identifies", ordering="identify_count")
    def identifies(self, device: Device) -> int:
        return device.identify_count

    @admin.display(description="matches", ordering="matched_count")
    def matches(self, device: Device) -> int:
        return device.matched_count

    @admin.display(
        description="match rate",
        ordering=Cast("matched_count", FloatField()) / NullIf(F("identify_count"), 0),
    )
    def match_rate(self, device: Device) -> str:
        if not device.identify_count:
            return "—"
        return f"{device.matched_count / device.identify_count:.0%}"

    @admin.display(description="bound voices")
    def bound_voices(self, device: Device) -> str:
        return admin_links(device.voices.order_by("name", "pk"), empty="No voice is bound.")

    @admin.display(description="")
    def household_link(self, device: Device) -> str:
        # The page belongs to the voiceprint app (it shows voices); named, not imported.
        url = reverse("admin:voiceprint_voice_household", args=[device.pk])
        return format_html('<a href="{}">household</a>', url)

    @admin.display(description="")
    def identify_link(self, device: Device) -> str:
        url = reverse("admin:identify")
        return format_html('<a href="{}?device={}">identify test</a>', url, device.pk)

    # --- writes go through devices.services ---------------------------------------------

    def save_model(self, request, obj, form, change):
        if change:  # the tenant and the device_id are read-only
            device_update(obj, device_name=obj.device_name, anti_spoofing=obj.anti_spoofing)
            return
        self.assign_tenant(request, obj)
        device = device_create(obj.tenant, device_id=obj.device_id, device_name=obj.device_name,
                               anti_spoofing=obj.anti_spoofing)  # fmt: skip
        adopt(obj, device)

    def delete_model(self, request, obj):
        device_delete(obj)

    def delete_queryset(self, request, queryset):
        for device in queryset:
            device_delete(device)
