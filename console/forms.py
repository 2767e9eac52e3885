"""Forms of the console's own pages (enrollment, samples, identify test, agent settings,
operating points)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from console.scoping import scoped_choices
from devices.models import Device
from roles.models import Role
from tenancy.models import Tenant
from voiceprint.limits import MAX_AUDIO_BYTES, MB
from voiceprint.services.consent import Consent


class AudioField(forms.FileField):
    """An uploaded recording (WAV, FLAC or OGG), at most MAX_AUDIO_BYTES: the API's limit."""

    def __init__(self, **kwargs):
        limit = f"{MAX_AUDIO_BYTES // MB} MB"
        kwargs.setdefault("help_text", f"WAV, FLAC or OGG; any sample rate; at most {limit}.")
        super().__init__(**kwargs)
        self.widget.attrs.setdefault("accept", "audio/*,.wav,.flac,.ogg")

    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload and upload.size > MAX_AUDIO_BYTES:
            message = f"The recording is larger than {MAX_AUDIO_BYTES // MB} MB."
            raise ValidationError(message, code="too_large")
        return upload


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AudioFilesField(AudioField):
    """Several recordings in one field, each checked as an AudioField; a list of uploads."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        check_one = super().clean
        uploads = data if isinstance(data, list | tuple) else [data]
        return [check_one(upload, initial) for upload in uploads]


class TenantRecordChoiceField(forms.ModelChoiceField):
    """Records of several tenants in one select, each labelled with its tenant."""

    def label_from_instance(self, obj) -> str:
        return f"{obj.tenant} · {obj}"


class DeviceChoiceField(TenantRecordChoiceField):
    def label_from_instance(self, obj) -> str:
        if obj.device_name in ("", obj.device_id):
            return f"{obj.tenant} · {obj.device_id}"
        return f"{obj.tenant} · {obj.device_name} ({obj.device_id})"


class ScopedForm(forms.Form):
    """A form whose choices are limited to what the requesting user may see."""

    def __init__(self, *args, request: HttpRequest, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        for field in self.fields.values():
            if isinstance(field, forms.ModelChoiceField):
                model = field.queryset.model
                field.queryset = scoped_choices(model, request).select_related(
                    *(["tenant"] if model is not Tenant else [])
                )
        tenant = self.fields.get("tenant")
        if tenant is not None and len(tenant.queryset) == 1:  # an operator's own
            tenant.initial = tenant.queryset[0].pk


class EnrollVoiceForm(ScopedForm):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.all())
    device = DeviceChoiceField(
        queryset=Device.objects.all(),
        required=False,
        help_text="The device the voice is bound to (more can be bound on the voice's page).",
    )
    role = TenantRecordChoiceField(
        queryset=Role.objects.all(), required=False, help_text="Empty: the tenant's default role."
    )
    name = forms.CharField(max_length=128, required=False)
    threshold = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        help_text="Cosine similarity a probe must reach. Empty: the engine's default.",
    )
    audio = AudioField()
    force = forms.BooleanField(
        required=False,
        label="Enroll anyway",
        help_text="Enroll even if it sounds like an existing voice (identify may then "
        "confuse the two).",
    )
    consent_subject = forms.CharField(
        max_length=128,
        required=False,
        label="Consent: subject",
        help_text="Who consented (a name or your own id of the person). Required, with the "
        "text version and channel, where the tenant requires consent.",
    )
    consent_text_version = forms.CharField(
        max_length=64, required=False, label="Consent: text version"
    )
    consent_channel = forms.CharField(
        max_length=32,
        required=False,
        label="Consent: channel",
        help_text='Where it was given, e.g. "app", "voice", "web", "paper".',
    )
    consent_time = forms.DateTimeField(
        required=False, label="Consent: time", help_text="Empty: now."
    )

    def clean(self):
        cleaned = super().clean()
        tenant = cleaned.get("tenant")
        for name in ("device", "role"):
            record = cleaned.get(name)
            if tenant and record and record.tenant_id != tenant.pk:
                self.add_error(name, f"This {name} belongs to tenant {record.tenant}.")
        self._clean_consent(required=bool(tenant and tenant.require_consent))
        return cleaned

    def _clean_consent(self, *, required: bool) -> None:
        """All three of subject, text version and channel, or (where the tenant allows)
        none; `consent` is the Consent for voice_create, or None."""
        cleaned = self.cleaned_data
        parts = ("consent_subject", "consent_text_version", "consent_channel")
        given = any(cleaned.get(name) for name in (*parts, "consent_time"))
        if required or given:
            for name in parts:
                if not cleaned.get(name) and name not in self.errors:
                    self.add_error(name, "Required for the consent record.")
        if self.errors:
            return
        cleaned["consent"] = (
            Consent(
                subject=cleaned["consent_subject"],
                text_version=cleaned["consent_text_version"],
                channel=cleaned["consent_channel"],
                **({"time": cleaned["consent_time"]} if cleaned.get("consent_time") else {}),
            )
            if given
            else None
        )


class AddSampleForm(forms.Form):
    audio = AudioField(label="Recording")
    force = forms.BooleanField(
        required=False,
        label="Add anyway",
        help_text="Add even if it does not match the voice (only when it is surely the same "
        "speaker: someone else's sample makes two people share one voiceprint).",
    )


class IdentifyForm(ScopedForm):
    device = DeviceChoiceField(queryset=Device.objects.all())
    audio = AudioField(
        label="Recording",
        help_text="Upload a file, or record from the microphone below.",
    )
    agent_id = forms.CharField(
        max_length=128,
        required=False,
        label="Agent ID",
        help_text="Optional: also decide whether the speaker may interrupt this agent.",
    )
    top_k = forms.IntegerField(min_value=1, max_value=16, initial=3, label="Candidates")
    anti_spoofing = forms.NullBooleanField(
        required=False,
        label="Anti-spoofing",
        widget=forms.Select(
            choices=[("unknown", "As the device says"), ("true", "Check"), ("false", "Skip")]
        ),
        help_text="Check the recording for recorded or synthetic speech.",
    )


class AgentForm(ScopedForm):
    """Which agent's role-interrupt settings to show."""

    tenant = forms.ModelChoiceField(queryset=Tenant.objects.all())
    agent_id = forms.CharField(max_length=128, label="Agent ID")


#: Recordings one console fit takes; `manage.py calibrate` takes a folder of any size.
MAX_FIT_FILES = 200


class OperatingPointFitForm(ScopedForm):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.all())
    target_far = forms.FloatField(
        min_value=0.0001,
        max_value=0.5,
        initial=0.01,
        label="Target false-accept rate",
        help_text="e.g. 0.01 for greetings and personalisation, 0.001 for anything that "
        "unlocks or pays (it needs about 1/rate different-speaker pairs).",
    )
    recordings = AudioFilesField(
        label="Recordings",
        help_text="Several recordings of at least two speakers; the speaker of a file is its "
        "name before the first '-' or '_' (anna-1.wav, anna_kitchen.wav).",
    )

    def clean_recordings(self):
        uploads = self.cleaned_data["recordings"]
        if len(uploads) > MAX_FIT_FILES:
            raise ValidationError(
                f"At most {MAX_FIT_FILES} files here; use `manage.py calibrate` for more."
            )
        return uploads
