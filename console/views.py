"""The console's own pages. Thin: forms in, one service call, a template out."""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from audit.context import console_actor
from console.errors import SERVICE_ERRORS, describe
from console.forms import IdentifyForm
from console.scoping import scope
from core.exceptions import ApiError
from devices.models import Device
from voiceprint import services
from voiceprint.spoofing import anti_spoofing_wanted
from voiceprint.streaming.tickets import TICKET_MAX_AGE, stream_ticket_issue


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
                    anti_spoofing=anti_spoofing_wanted(
                        device.tenant,
                        requested=form.cleaned_data["anti_spoofing"],
                        device=device,
                    ),
                )
            except SERVICE_ERRORS as exc:
                error = describe(exc)
    else:
        form = IdentifyForm(initial={"device": request.GET.get("device")}, request=request)
    devices = form.fields["device"]
    context = {
        **site.each_context(request),
        "title": "Identify test",
        "form": form,
        # The live microphone panel's own choice of device (the same ones as the form's).
        "live_devices": [(d.pk, devices.label_from_instance(d)) for d in devices.queryset],
        "live_device": form["device"].value(),
        "result": result,
        "error": error,
        "submitted": request.method == "POST" and form.is_valid(),
    }
    return TemplateResponse(request, "console/identify.html", context)


@require_POST
def identify_stream_ticket(request: HttpRequest) -> JsonResponse:
    """A stream ticket for the live microphone of the identify page: POST `device` (the
    device's pk, as the identify form's choice); the ticket is for that device's tenant, so a
    user gets one only for a device they may see (docs/CONSOLE.md, "Live microphone"). A
    ticket opens one stream: the page asks for a new one at every start."""
    if not request.user.has_perm("devices.view_device"):
        raise PermissionDenied
    device = (
        scope(Device.objects.all(), request, "tenant")
        .filter(pk=_int_or_none(request.POST.get("device")))
        .first()
    )
    if device is None:
        return JsonResponse({"error": "no such device"}, status=404)
    try:
        ticket = stream_ticket_issue(
            tenant_id=device.tenant_id,
            device_id=device.device_id,
            actor=console_actor(request.user.get_username()),
        )
    except ApiError as exc:  # the cache that keeps tickets single-use is unreachable
        return JsonResponse({"error": describe(exc)}, status=exc.code.http_status)
    # Never cached: admin_view adds no-store.
    return JsonResponse(
        {"ticket": ticket, "device_id": device.device_id, "expires_in": TICKET_MAX_AGE}
    )


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value or "")
    except ValueError:
        return None
