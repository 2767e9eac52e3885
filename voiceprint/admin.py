"""Console: voices with their enrollment samples (playable, removable, with their quality
and agreement), enrollment progress and look-alikes, bindings, enrollment; a device's
household (its voices side by side, and its identify outcomes over time); a tenant's
operating points, fitted on uploaded recordings."""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from console.admin_utils import admin_links
from console.charts import heat_style, stacked_bar_chart
from console.errors import SERVICE_ERRORS, describe
from console.forms import AddSampleForm, EnrollVoiceForm, OperatingPointFitForm
from console.scoping import TenantScopedAdminMixin, scope
from core.exceptions import ApiError
from devices.models import Device
from engine.evaluation import speaker_label
from tenancy.scoping import owned
from voiceprint import selectors, services
from voiceprint.decision import OUTCOMES
from voiceprint.guidance import EnrollmentSummary
from voiceprint.models import OperatingPoint, Voice, VoiceSample


class VoiceChangeForm(forms.ModelForm):
    """A voice's editable settings, saved by voiceprint.services. Devices are bound through
    it (the binding table carries the per-device capacity limit), so they are a plain form
    field, checked with the service's own capacity check."""

    bound_devices = forms.ModelMultipleChoiceField(
        queryset=Device.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Devices",
        help_text="The devices that recognise this voice.",
    )

    class Meta:
        model = Voice
        fields = ("name", "threshold", "role", "labels")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A user who may only view a voice gets a form without fields (all are read-only).
        tenant = self.instance.tenant
        if "role" in self.fields:
            self.fields["role"].queryset = self.fields["role"].queryset.filter(tenant=tenant)
        if "bound_devices" in self.fields:
            self.fields["bound_devices"].queryset = owned(Device, tenant)
            self.fields["bound_devices"].initial = list(self.instance.devices.all())
        if "threshold" in self.fields:
            self.fields["threshold"].help_text = "Cosine similarity (0 to 1) a probe must reach."
        if "labels" in self.fields:
            self.fields["labels"].widget.attrs.update(rows=2, cols=60)
            self.fields["labels"].help_text = 'Voice API labels, a JSON object: {"room": "kitchen"}'
        if "role" in self.fields:  # roles are managed on their own page
            widget = self.fields["role"].widget
            widget.can_change_related = widget.can_delete_related = False

    def clean_threshold(self):
        threshold = self.cleaned_data["threshold"]
        if not 0.0 <= threshold <= 1.0:
            raise ValidationError("The threshold is a similarity between 0 and 1.")
        return threshold

    def clean_bound_devices(self):
        devices = self.cleaned_data["bound_devices"]
        try:
            services.device_capacity_check(devices, voice=self.instance)
        except SERVICE_ERRORS as exc:
            raise ValidationError(describe(exc)) from None
        return devices


class VoiceSampleInline(admin.TabularInline):
    model = VoiceSample
    fields = (
        "number",
        "player",
        "kind",
        "duration",
        "speech",
        "snr",
        "clipping_share",
        "agreement_score",
        "engine_name",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "enrollment sample"

    def get_queryset(self, request):
        # The number is the sample's index among the voice's samples, as the enrollment
        # issues and voices/{id}/audio?sample= count them.
        return (
            super()
            .get_queryset(request)
            .select_related("voice")
            .defer("embedding", "voice__centroid")
            .annotate(
                index=Window(
                    RowNumber(),
                    partition_by=F("voice"),
                    order_by=[F("created_at").asc(), F("pk").asc()],
                )
                - 1
            )
        )

    def get_fields(self, request, obj=None):
        # Whoever may change the voice may remove its samples (the remove view checks too).
        if obj is not None and request.user.has_perm("voiceprint.change_voice"):
            return (*self.fields, "remove")
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description="#")
    def number(self, sample: VoiceSample) -> str:
        return f"#{sample.index}" if getattr(sample, "index", None) is not None else "—"

    @admin.display(description="recording")
    def player(self, sample: VoiceSample) -> str:
        if sample.pk is None:
            return "—"
        if sample.imported:
            return format_html(
                '<span title="{}">no audio</span>', "imported as an embedding (import_embeddings)"
            )
        if sample.audio_purged_at is not None:
            return format_html(
                '<span title="deleted after VOICEPRINT_AUDIO_RETENTION_DAYS; the voiceprint '
                'keeps its embedding">purged {}</span>',
                sample.audio_purged_at.date().isoformat(),
            )
        url = reverse("admin:voiceprint_voice_sample_audio", args=[sample.pk])
        return format_html(
            '<audio controls preload="metadata" class="console-audio" src="{}" '
            'data-sample="{}"></audio> <a href="{}" download>download</a>',
            url,
            sample.pk,
            url,
        )

    @admin.display(description="duration")
    def duration(self, sample: VoiceSample) -> str:
        return f"{sample.duration_seconds:.1f} s"

    @admin.display(description="speech (after silence removal)")
    def speech(self, sample: VoiceSample) -> str:
        return f"{sample.speech_seconds:.1f} s"

    @admin.display(description="SNR")
    def snr(self, sample: VoiceSample) -> str:
        return "—" if sample.snr_db is None else f"{sample.snr_db:.0f} dB"

    @admin.display(description="clipping")
    def clipping_share(self, sample: VoiceSample) -> str:
        return "—" if sample.clipping is None else f"{sample.clipping:.2%}"

    @admin.display(description="agreement")
    def agreement_score(self, sample: VoiceSample) -> str:
        """The sample's cosine to the mean of the voice's other samples; one below the
        voice's threshold is marked: it may be someone else's."""
        if sample.agreement is None:
            return "—"
        threshold = sample.voice.threshold
        if sample.agreement < threshold:
            return format_html(
                '<span class="console-outlier" title="below the voice\'s threshold {}: '
                'perhaps someone else; remove it if so">{} · outlier</span>',
                f"{threshold:.3f}",
                f"{sample.agreement:.3f}",
            )
        return f"{sample.agreement:.3f}"

    @admin.display(description="")
    def remove(self, sample: VoiceSample) -> str:
        if sample.pk is None:
            return ""
        # The inline sits inside the voice's form (no nested forms): the button posts that
        # form, its CSRF token included, to the remove view instead.
        url = reverse("admin:voiceprint_voice_remove_sample", args=[sample.pk])
        return format_html(
            '<button type="submit" class="button console-remove" formaction="{}" '
            'formnovalidate name="remove_sample" value="{}">Remove</button>',
            url,
            sample.pk,
        )

    # The samples are part of the voice: whoever may see the voice may hear them; they are
    # added with "Add a sample" (which recomputes the voiceprint), never edited.
    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("voiceprint.view_voice")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Voice)
class VoiceAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    form = VoiceChangeForm
    list_display = (
        "display_name",
        "tenant",
        "role",
        "device_list",
        "sample_count",
        "threshold",
        "engine_name",
        "store",
        "status",
        "created_at",
    )
    list_filter = (
        "tenant",
        ("devices", admin.RelatedOnlyFieldListFilter),
        ("role", admin.RelatedOnlyFieldListFilter),
        "engine_name",
        "store",
        "status",
    )
    list_select_related = ("tenant", "role")
    search_fields = (
        "name",
        "voice_id",
        "tenant__name",
        "role__name",
        "devices__device_id",
        "devices__device_name",
    )
    readonly_fields = (
        "tenant",
        "voice_id",
        "status",
        "engine_name",
        "dim",
        "store",
        "sample_count",
        "consent_record",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("tenant", "voice_id", "name", "status")}),
        ("Recognition", {"fields": ("threshold", "role", "bound_devices")}),
        (
            "Engine and gallery",
            {"fields": ("engine_name", "dim", "store", "labels", "sample_count")},
        ),
        ("Consent", {"fields": ("consent_record",)}),
        ("History", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = (VoiceSampleInline,)
    change_form_template = "console/voice_change_form.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .defer("centroid")
            .annotate(sample_count=Count("samples", distinct=True))
            .prefetch_related("devices")
        )

    @admin.display(description="voice", ordering="name")
    def display_name(self, voice: Voice) -> str:
        return str(voice)

    @admin.display(description="devices")
    def device_list(self, voice: Voice) -> str:
        return admin_links(voice.devices.all())

    @admin.display(description="devices")
    def bound_devices(self, voice: Voice) -> str:
        """The devices, for a user who may only view the voice (others get the form field)."""
        return admin_links(voice.devices.all())

    @admin.display(description="consent")
    def consent_record(self, voice: Voice) -> str:
        """As given at enrollment (it is never edited)."""
        consent = selectors.voice_consent(voice)
        if consent is None:
            return "none recorded"
        return format_html(
            "{} · text version {} · via {} · {}",
            consent["subject"], consent["text_version"], consent["channel"], consent["time"],
        )  # fmt: skip

    @admin.display(description="samples", ordering="sample_count")
    def sample_count(self, voice: Voice) -> int:
        return voice.sample_count

    # --- writes go through voiceprint.services ------------------------------------------

    def save_model(self, request, obj, form, change):
        # Only changes come here: a voice is added by enrollment (add_view).
        data = form.cleaned_data
        services.voice_update(
            obj,
            name=data["name"],
            labels=data["labels"],
            threshold=data["threshold"],
            role=data["role"],
            devices=data["bound_devices"],
        )

    def delete_model(self, request, obj):
        services.voice_delete(obj)  # also removes the stored audio

    def delete_queryset(self, request, queryset):
        for voice in queryset:
            services.voice_delete(voice)

    # --- enrollment, samples, audio -----------------------------------------------------

    def get_urls(self):
        return [
            path(
                "samples/<int:sample_id>/audio/",
                self.admin_site.admin_view(self.sample_audio_view),
                name="voiceprint_voice_sample_audio",
            ),
            path(
                "samples/<int:sample_id>/remove/",
                self.admin_site.admin_view(require_POST(self.remove_sample_view)),
                name="voiceprint_voice_remove_sample",
            ),
            path(
                "household/<int:device_pk>/",
                self.admin_site.admin_view(self.household_view),
                name="voiceprint_voice_household",
            ),
            path(
                "<path:object_id>/add-sample/",
                self.admin_site.admin_view(self.add_sample_view),
                name="voiceprint_voice_add_sample",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None:
            report = enrollment_report(obj)
            context["enrollment"] = report.summary
            context["similar_voices"] = report.similar
        return super().render_change_form(request, context, add, change, form_url, obj)

    def add_view(self, request, form_url="", extra_context=None):
        """Enrollment: a voice is made from a recording, by voiceprint.services."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = EnrollVoiceForm(request.POST, request.FILES, request=request)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    voice = services.voice_create(
                        data["tenant"],
                        audio=data["audio"].read(),
                        devices=[data["device"]] if data["device"] else [],
                        role=data["role"],
                        threshold=data["threshold"],
                        name=data["name"],
                        force=data["force"],
                        consent=data["consent"],
                    )
                except SERVICE_ERRORS as exc:
                    form.add_error(None, f"The voice could not be enrolled: {describe(exc)}")
                else:
                    self.log_addition(request, voice, [{"added": {}}])
                    self._report_progress(request, voice, f"Enrolled voice “{voice}”.")
                    return HttpResponseRedirect(
                        reverse("admin:voiceprint_voice_change", args=[voice.pk])
                    )
        else:
            form = EnrollVoiceForm(initial=request.GET.dict(), request=request)
        return self._audio_form_page(
            request,
            form,
            title="Enroll a voice",
            intro="Upload a recording of one speaker (a few seconds of speech), or record it "
            "from the microphone. More recordings can be added afterwards as samples.",
            submit_label="Enroll",
            form_id="enroll-form",
        )

    def add_sample_view(self, request, object_id):
        voice = self.get_object(request, object_id)
        if voice is None:
            raise Http404
        if not self.has_change_permission(request, voice):
            raise PermissionDenied
        form = AddSampleForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                voice = services.voice_sample_add(
                    voice,
                    audio=form.cleaned_data["audio"].read(),
                    force=form.cleaned_data["force"],
                )
            except SERVICE_ERRORS as exc:
                form.add_error(None, f"The sample could not be added: {describe(exc)}")
            else:
                self.log_change(request, voice, [{"added": {"object": "enrollment sample"}}])
                self._report_progress(
                    request,
                    voice,
                    "Added the sample; the voiceprint is now the mean of all samples.",
                )
                return HttpResponseRedirect(
                    reverse("admin:voiceprint_voice_change", args=[voice.pk])
                )
        return self._audio_form_page(
            request,
            form,
            title="Add a sample",
            intro=f"Another recording of “{voice}”; the voiceprint becomes the normalised mean "
            "of all its samples.",
            submit_label="Add sample",
            form_id="sample-form",
            original=voice,
        )

    def remove_sample_view(self, request, sample_id):
        """Remove one sample (POST): the centroid and the other samples' agreement are
        recomputed by the service, which refuses (40900) to remove the last enrollment
        sample."""
        sample = self._visible_sample(request, sample_id)
        voice = sample.voice
        if not self.has_change_permission(request, voice):
            raise PermissionDenied
        samples = selectors.voice_sample_list(voice).values_list("pk", flat=True)
        number = list(samples).index(sample.pk)  # as the API's `sample` index counts
        try:
            services.voice_sample_delete(voice, sample_id=sample.pk)
        except SERVICE_ERRORS as exc:
            self.message_user(
                request, f"Sample #{number} was not removed: {describe(exc)}", messages.ERROR
            )
        else:
            self.log_change(request, voice, [{"deleted": {"object": f"sample #{number}"}}])
            self._report_progress(
                request,
                voice,
                f"Removed sample #{number} ({sample.speech_seconds:.1f} s of speech); the "
                "voiceprint is now the mean of the remaining samples.",
            )
        return HttpResponseRedirect(reverse("admin:voiceprint_voice_change", args=[voice.pk]))

    def household_view(self, request, device_pk):
        """A device's voices side by side: how alike their voiceprints are, how far each
        one's enrollment is, and what the device's identify calls decided lately."""
        if not (self.has_view_permission(request) and request.user.has_perm("devices.view_device")):
            raise PermissionDenied
        device = scope(Device.objects.select_related("tenant"), request, "tenant")
        device = device.filter(pk=device_pk).first()
        if device is None:
            raise Http404("no such device")
        by = "hour" if request.GET.get("by") == "hour" else "day"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Household of {device}",
            "device": device,
            "device_opts": Device._meta,
            "by": by,
            **household_context(device, by=by),
        }
        return TemplateResponse(request, "console/device_household.html", context)

    def _visible_sample(self, request, sample_id) -> VoiceSample:
        """The sample, if its voice is one the user may see (another tenant's: 404)."""
        sample = (
            VoiceSample.objects.filter(voice__in=self.get_queryset(request))
            .select_related("voice")
            .defer("embedding", "voice__centroid")
            .filter(pk=sample_id)
            .first()
        )
        if sample is None:
            raise Http404("no such sample")
        return sample

    def _report_progress(self, request, voice: Voice, done: str) -> None:
        """`done`, then the voice's enrollment progress and issues; a warning when one of
        them is a look-alike (identify may confuse the two voices)."""
        report = enrollment_report(voice)
        level = messages.WARNING if any(s.passes for s in report.similar) else messages.SUCCESS
        self.message_user(request, f"{done} {progress_message(report.summary)}", level)

    def sample_audio_view(self, request, sample_id):
        """The stored enrollment audio of a sample the user may see, as WAV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        sample = self._visible_sample(request, sample_id)
        try:
            audio = services.sample_audio_open(sample)
        except (FileNotFoundError, OSError) as exc:
            raise Http404("the sample's audio is missing from storage") from exc
        except ApiError as exc:
            # Not decryptable (its key is not configured, or the file was altered), or the
            # key setting is malformed: said in words, never a trace.
            return HttpResponse(
                describe(exc), status=exc.code.http_status, content_type="text/plain"
            )
        response = FileResponse(
            audio,
            content_type="audio/wav",
            filename=f"{sample.voice.voice_id}-{sample.pk}.wav",
        )
        response["Cache-Control"] = "private, max-age=3600"
        return response

    def _audio_form_page(self, request, form, **context):
        return audio_form_page(self, request, form, **context)


def progress_message(summary: EnrollmentSummary) -> str:
    """An enrollment's progress in words: "Enrolled 3.7 s of 6 s of speech (62%): add
    3 s more speech."."""
    text = (
        f"Enrolled {summary.speech_seconds:.1f} s of {summary.target_speech_seconds:g} s of "
        f"speech ({summary.progress:.0%})"
    )
    return f"{text}: {'; '.join(summary.issues)}." if summary.issues else f"{text}."


def enrollment_report(voice: Voice) -> services.EnrollmentReport:
    """The voice's progress, issues and similar voices; without the similar voices while
    it has no voiceprint or they cannot be scored (e.g. after an engine change)."""
    if voice.centroid is not None:
        try:
            return services.voice_enrollment_report(voice)
        except SERVICE_ERRORS:
            pass
    return services.EnrollmentReport(summary=selectors.voice_enrollment(voice), similar=[])


#: What the bars of a household's outcome chart stack, bottom to top.
OUTCOME_KEYS = ("match", "uncertain", "no_match", "spoof")
#: How far back the outcome chart looks, and each bar's width, per bucket.
OUTCOME_WINDOWS = {"day": (7, 64), "hour": (2, 14)}


def household_context(device: Device, *, by: str) -> dict:
    """What console/device_household.html shows of `device`."""
    voices = list(selectors.voice_list_bound(device.tenant, device=device))
    scores = services.voice_pair_scores(voices)
    heat = [
        {
            "voice": voice,
            "cells": [
                {
                    "other": other,
                    "score": score,
                    "style": heat_style(score.cosine) if score is not None else "",
                    "diagonal": voice.pk == other.pk,
                }
                for other, score in zip(voices, row, strict=True)
            ],
        }
        for voice, row in zip(voices, scores, strict=True)
    ]
    days, slot_width = OUTCOME_WINDOWS[by]
    buckets = selectors.identify_outcome_list(device.tenant, device=device, days=days, bucket=by)
    chart = stacked_bar_chart(
        buckets,
        keys=OUTCOME_KEYS,
        title=lambda b: _bucket_title(b, by),
        label=lambda index, b: _bucket_label(index, b, by),
        slot_width=slot_width,
    )
    return {
        "voices": [(voice, selectors.voice_enrollment(voice)) for voice in voices],
        "heat": heat,
        "chart": chart,
        "outcome_totals": {key: sum(getattr(b, key) for b in buckets) for key in OUTCOMES},
        "outcome_days": days,
    }


def _bucket_title(bucket, by: str) -> str:
    when = f"{bucket.start:%a %d %b}" if by == "day" else f"{bucket.start:%a %d %b %H:00}"
    return (
        f"{when} UTC: {bucket.match} accepted, {bucket.uncertain} uncertain, "
        f"{bucket.no_match} rejected, {bucket.spoof} refused as spoofed"
    )


def _bucket_label(index: int, bucket, by: str) -> str | None:
    if by == "day":
        return f"{bucket.start:%d %b}"
    return f"{bucket.start:%H:00}" if bucket.start.hour % 6 == 0 else None


def audio_form_page(model_admin: admin.ModelAdmin, request, form, **context) -> TemplateResponse:
    """A console page with one form of recordings (console/audio_form.html)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "form": form,
        **context,
    }
    return TemplateResponse(request, "console/audio_form.html", context)


@admin.register(OperatingPoint)
class OperatingPointAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """A tenant's fitted decision points. "Add" fits one on uploaded recordings (replacing
    the tenant's point for that engine); "Delete" resets it to the engine's default."""

    list_display = (
        "engine_name",
        "tenant",
        "z_threshold",
        "target_far",
        "speakers",
        "nontarget_trials",
        "target_trials",
        "frr",
        "fitted_at",
    )
    list_filter = ("tenant", "engine_name")
    list_select_related = ("tenant",)
    search_fields = ("tenant__name", "engine_name")
    readonly_fields = (*list_display[:-2], "measured_frr", "fitted_at")

    @admin.display(description="measured FRR", ordering="measured_frr")
    def frr(self, point: OperatingPoint) -> str:
        return "—" if point.measured_frr is None else f"{point.measured_frr:.1%}"

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # refitted, never edited by hand

    def delete_model(self, request, obj):
        services.operating_point_delete(obj.tenant, engine_name=obj.engine_name)

    def delete_queryset(self, request, queryset):
        for point in queryset.select_related("tenant"):
            self.delete_model(request, point)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = OperatingPointFitForm(request.POST or None, request.FILES or None, request=request)
        if request.method == "POST" and form.is_valid():
            try:
                fit = self._fit(form.cleaned_data)
            except SERVICE_ERRORS as exc:
                form.add_error(None, f"No operating point was fitted: {describe(exc)}")
            else:
                self._report(request, fit, form.cleaned_data["recordings"])
                return HttpResponseRedirect(reverse("admin:voiceprint_operatingpoint_changelist"))
        return audio_form_page(
            self,
            request,
            form,
            title="Fit an operating point",
            intro="Upload several recordings of each of several speakers of this tenant. Every "
            "pair of two speakers is a false-accept trial: the point is the score that only "
            "the target share of them reaches. It replaces the tenant's point for the active "
            "engine and applies to voices that keep the engine's default threshold.",
            submit_label="Fit",
            form_id="operating-point-form",
        )

    @staticmethod
    def _fit(data) -> services.OperatingPointFit:
        recordings = [
            (speaker_label(Path(upload.name), Path("."), "prefix"), upload.read())
            for upload in data["recordings"]
        ]
        return services.operating_point_fit(
            data["tenant"], recordings=recordings, target_far=data["target_far"]
        )

    def _report(self, request, fit: services.OperatingPointFit, uploads) -> None:
        point = fit.point
        self.log_addition(request, point, [{"added": {}}])
        frr = "unmeasured" if point.measured_frr is None else f"{point.measured_frr:.1%}"
        self.message_user(
            request,
            f"Fitted {point.tenant}'s operating point for {point.engine_name}: z ≥ "
            f"{point.z_threshold:.3f} at a false-accept rate of {point.target_far:g}, on "
            f"{point.nontarget_trials} different-speaker trials of {point.speakers} speakers; "
            f"measured false-reject rate {frr}.",
            messages.SUCCESS,
        )
        if fit.skipped:
            names = ", ".join(uploads[index].name for index, _ in fit.skipped)
            self.message_user(
                request, f"Skipped (too little speech or bad audio): {names}", messages.WARNING
            )
