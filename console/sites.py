"""The console's admin site: the default `admin.site` (see ConsoleAdminConfig)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Sum
from django.urls import path

from config.health import service_status
from console import views
from console.scoping import is_unrestricted, scope
from devices.models import Device
from tenancy.models import Tenant
from voiceprint.models import Voice


class ConsoleAdminSite(admin.AdminSite):
    site_header = "Voiceprint console"
    site_title = "Voiceprint console"
    index_title = "Dashboard"
    # "View site": the service has no home page; its API documentation is the closest.
    site_url = "/api/docs/"
    index_template = "console/index.html"
    # The breadcrumbs and the dashboard are enough; list pages need the width more.
    enable_nav_sidebar = False

    def get_urls(self):
        return [
            path("identify/", self.admin_view(self.identify_view), name="identify"),
            path(
                "identify/stream-ticket/",
                self.admin_view(views.identify_stream_ticket),
                name="identify_stream_ticket",
            ),
            *super().get_urls(),
        ]

    def identify_view(self, request):
        return views.identify_test(request, self)

    def index(self, request, extra_context=None):
        devices = scope(Device.objects.all(), request, "tenant")
        totals = devices.aggregate(identify=Sum("identify_count"), matched=Sum("matched_count"))
        context = {
            "stats": {
                "tenants": scope(Tenant.objects.all(), request, "pk").count(),
                "devices": devices.count(),
                "voices": scope(Voice.objects.all(), request, "tenant").count(),
                "identify": totals["identify"] or 0,
                "matched": totals["matched"] or 0,
            },
            **(extra_context or {}),
        }
        if is_unrestricted(request):  # server internals (paths, reasons): superusers only
            context["service"] = service_status()
        return super().index(request, context)
