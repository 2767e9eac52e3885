"""The console's own pages. Thin: forms in, one service call, a template out."""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from console.errors import SERVICE_ERRORS, describe
from console.forms import IdentifyForm
from voiceprint import services


def identify_test(request: HttpRequest, site: AdminSite) -> HttpResponse:
    """1:N identification of an uploaded or recorded clip among a device's voices, as a
    device would ask for it (so it counts in the device's statistics)."""
    if not request.user.has_perm("devices.view_device"):
        raise PermissionDenied
    result = error = None
    if request.method == "POST":
        form = IdentifyForm(request.POST, request.FILES, request=request)
        if form.is_valid():
            device = form.cleaned_data["device"]
            try:
                result = services.voice_identify(
                    device.tenant,
                    device=device,
                    audio=form.cleaned_data["audio"].read(),
                    agent_id=form.cleaned_data["agent_id"] or None,
                    top_k=form.cleaned_data["top_k"],
                )
            except SERVICE_ERRORS as exc:
                error = describe(exc)
    else:
        form = IdentifyForm(initial={"device": request.GET.get("device")}, request=request)
    context = {
        **site.each_context(request),
        "title": "Identify test",
        "form": form,
        "result": result,
        "error": error,
        "submitted": request.method == "POST" and form.is_valid(),
    }
    return TemplateResponse(request, "console/identify.html", context)
