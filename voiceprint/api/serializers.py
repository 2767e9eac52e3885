"""Input and output shapes of the Voiceprint API's voice endpoints (API.md)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.fields import TrueFalseStringField
from voiceprint.decision import OUTCOMES, VoiceScore
from voiceprint.models import Voice, VoiceSample
from voiceprint.selectors import voice_consent, voice_enrollment
from voiceprint.services.consent import Consent

MAX_TOP_K = 50


class EnrollmentOutputSerializer(serializers.Serializer):
    """How far the voice's enrollment is, and what would help (voiceprint.guidance)."""

    speech_seconds = serializers.FloatField(
        help_text="net speech of the enrollment samples (after silence removal)"
    )
    target_speech_seconds = serializers.FloatField(
        help_text="the enrolled speech a voice should reach (VOICEPRINT_ENROLL_TARGET_SECONDS)"
    )
    progress = serializers.FloatField(help_text="speech_seconds / target_speech_seconds, 0-1")
    issues = serializers.ListField(
        child=serializers.CharField(),
        help_text='what would help, e.g. "add 3 s more speech", "noisy: SNR 9 dB in sample #1"'
        " (#n: the `sample` index of voices/{id}/audio); empty when nothing",
    )


class SimilarVoiceOutputSerializer(serializers.Serializer):
    voice_id = serializers.CharField()
    voice_name = serializers.CharField()
    score = serializers.FloatField(help_text="cosine similarity of the two voiceprints")
    lookalike = serializers.BooleanField(
        help_text="that voice would already match this one (its decision point): identify "
        "may confuse the two"
    )


def similar_voices_data(scores: list[VoiceScore]) -> list[dict]:
    """`similar_voices` of an enrollment reply, from services.similar_voices."""
    return [
        {
            "voice_id": score.voice.voice_id,
            "voice_name": score.voice.name,
            "score": round(score.cosine, 6),
            "lookalike": score.passes,
        }
        for score in scores
    ]


class ConsentInputSerializer(serializers.Serializer):
    """The consent an enrollment was given under (README, "Consent")."""

    subject = serializers.CharField(
        max_length=128, help_text="who consented: a name or your own id of the person"
    )
    text_version = serializers.CharField(
        max_length=64, help_text="the version of the consent text shown to them"
    )
    channel = serializers.CharField(
        max_length=32, help_text='where it was given, e.g. "app", "voice", "web", "paper"'
    )
    time = serializers.DateTimeField(
        required=False, help_text="when it was given, ISO 8601; default: now"
    )


class ConsentOutputSerializer(ConsentInputSerializer):
    time = serializers.DateTimeField(help_text="when it was given, ISO 8601")


#: The consent fields of a multipart or raw-body enrollment (form fields, X-Consent-*
#: headers), which JSON nests in `consent`.
CONSENT_FLAT_FIELDS = {f"consent_{name}": name for name in ConsentInputSerializer().fields}


def consent_nested(params: dict) -> dict:
    """`params` with flat `consent_*` fields nested as `consent`, as JSON sends them."""
    flat = {key: params[key] for key in CONSENT_FLAT_FIELDS if key in params}
    if not flat:
        return params
    rest = {key: value for key, value in params.items() if key not in flat}
    return {**rest, "consent": {CONSENT_FLAT_FIELDS[key]: v for key, v in flat.items()}}


def consent_from(params: dict) -> Consent | None:
    """The Consent of validated parameters, None without one."""
    consent = params.get("consent")
    return Consent(**consent) if consent else None


class VoiceOutputSerializer(serializers.ModelSerializer):
    """The voice object of API.md."""

    voice_name = serializers.CharField(source="name")
    voice_url = serializers.SerializerMethodField()
    role_bind = serializers.SerializerMethodField()
    dev_bind = serializers.SerializerMethodField()
    sample_count = serializers.IntegerField(read_only=True)
    #: The engine that made the voiceprint, under the contract's field name.
    model = serializers.CharField(source="engine_name", max_length=32)
    enrollment = serializers.SerializerMethodField()
    consent = serializers.SerializerMethodField()

    class Meta:
        model = Voice
        fields = [
            "voice_id", "voice_name", "voice_url", "status", "threshold", "role_bind",
            "dev_bind", "model", "sample_count", "enrollment", "consent", "created_at",
            "updated_at",
        ]  # fmt: skip

    @extend_schema_field(ConsentOutputSerializer(allow_null=True))
    def get_consent(self, voice: Voice) -> dict | None:
        return voice_consent(voice)

    @extend_schema_field(EnrollmentOutputSerializer)
    def get_enrollment(self, voice: Voice) -> dict:
        return voice_enrollment(voice).as_dict()

    def get_voice_url(self, voice: Voice) -> str:
        path = reverse("voice-audio", args=[voice.voice_id])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"role_id": {"type": "string"}, "role_name": {"type": "string"}},
        }
    )
    def get_role_bind(self, voice: Voice) -> dict:
        role = voice.role
        return {"role_id": role.role_id, "role_name": role.name} if role else {}

    @extend_schema_field(
        {"type": "array", "items": {"type": "object", "properties": {
            "device_id": {"type": "string"}, "device_name": {"type": "string"}}}}
    )  # fmt: skip
    def get_dev_bind(self, voice: Voice) -> list[dict]:
        return [
            {"device_id": device.device_id, "device_name": device.device_name}
            for device in voice.devices.all()
        ]


class VoiceSampleOutputSerializer(serializers.ModelSerializer):
    """One sample of a voice, as GET voices/{id}/samples lists them (with its `sample`
    index, the one of voices/{id}/audio?sample=)."""

    agreement = serializers.FloatField(
        allow_null=True,
        help_text="cosine of the sample's embedding to the mean of the voice's other samples "
        "(null for a voice's only sample): below the voice's threshold, it may be someone else",
    )

    audio_purged_at = serializers.DateTimeField(
        allow_null=True,
        help_text="when the recording was deleted after VOICEPRINT_AUDIO_RETENTION_DAYS (its "
        "embedding is kept; voices/{id}/audio answers 40400 for it); null while it is kept",
    )

    class Meta:
        model = VoiceSample
        fields = [
            "kind", "duration_seconds", "speech_seconds", "snr_db", "clipping", "agreement",
            "created_at", "audio_purged_at",
        ]  # fmt: skip


class VoiceSampleListItemSerializer(VoiceSampleOutputSerializer):
    """Describes a listed sample (the view adds `sample`)."""

    sample = serializers.IntegerField(help_text="index, as in voices/{id}/audio?sample=")

    class Meta(VoiceSampleOutputSerializer.Meta):
        fields = ["sample", *VoiceSampleOutputSerializer.Meta.fields]


class VoiceEnrollmentOutputSerializer(VoiceOutputSerializer):
    """The reply of an enrollment (voices/create, voices/{id}/samples): the voice object and
    the existing voices most similar to it. Describes the reply (views build it)."""

    similar_voices = SimilarVoiceOutputSerializer(many=True, read_only=True)

    class Meta(VoiceOutputSerializer.Meta):
        fields = [*VoiceOutputSerializer.Meta.fields, "similar_voices"]


class AudioInputMixin(serializers.Serializer):
    """Documents the JSON audio fields; the audio itself is read by voiceprint.audio_input."""

    audio_url = serializers.URLField(required=False, help_text="http(s) URL, at most 10 MB")
    audio_base64 = serializers.CharField(
        required=False, help_text="raw base64 or a data:audio/...;base64, URI, at most 10 MB"
    )


class VoiceCreateInputSerializer(AudioInputMixin):
    device_id = serializers.CharField(max_length=128)
    role_id = serializers.CharField(max_length=32, required=False, allow_blank=True)
    threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    voice_name = serializers.CharField(max_length=128, required=False, allow_blank=True)
    force = serializers.BooleanField(
        default=False,
        help_text="enroll even when an existing voice would already match this one "
        "(VOICEPRINT_LOOKALIKE_POLICY=refuse)",
    )
    consent = ConsentInputSerializer(
        required=False,
        allow_null=True,
        help_text="the person's consent to enrollment; required where the tenant requires it "
        "(multipart: consent_subject, consent_text_version, consent_channel, consent_time)",
    )


class VoiceSampleAddInputSerializer(AudioInputMixin):
    force = serializers.BooleanField(
        default=False,
        help_text="add the sample even when it does not match the voice (else 40900)",
    )


ANTI_SPOOFING_HELP = (
    "check the probe for recorded or synthetic speech (X-Anti-Spoofing on raw uploads); "
    "unset: the device's default, else the tenant's"
)


class VoiceIdentifyInputSerializer(AudioInputMixin):
    device_id = serializers.CharField(max_length=128)
    agent_id = serializers.CharField(max_length=128, required=False, allow_blank=True)
    top_k = serializers.IntegerField(min_value=1, max_value=MAX_TOP_K, default=3)
    anti_spoofing = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text=ANTI_SPOOFING_HELP
    )


class VoiceVerifyInputSerializer(AudioInputMixin):
    anti_spoofing = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text=ANTI_SPOOFING_HELP
    )


class ProbeQualityOutputSerializer(serializers.Serializer):
    """How much speech the probe held, how noisy and how clipped it was: a decision on a
    short, noisy or clipped probe deserves less trust."""

    speech_seconds = serializers.FloatField(
        help_text="seconds of speech after silence removal: what the engine embedded"
    )
    snr_db = serializers.FloatField(
        help_text="estimated speech-to-noise ratio of the whole recording, dB, -10 to 50 "
        "(50: no measurable noise)"
    )
    clipping = serializers.FloatField(
        help_text="share (0-1) of the samples at or above 99% of full scale (clipped): about "
        "0 on a well-levelled recording"
    )


DECISION_HELP = (
    '"match", "no_match", "uncertain" (too little or too noisy speech for a confident '
    'answer, or two voices too close to tell apart: ask again) or "spoof" (the probe was '
    'checked and sounds recorded or synthetic: never a match). See the README, "Decisions".'
)


class SpoofOutputSerializer(serializers.Serializer):
    """The anti-spoofing countermeasure's verdict on the probe (only when it was checked)."""

    score = serializers.FloatField(help_text="mean bona-fide logit: higher is more likely live")
    is_spoof = serializers.BooleanField(help_text="score below threshold")
    threshold = serializers.FloatField()
    model = serializers.CharField(help_text='"aasist" or "aasist-l"')


PROBABILITY_HELP = (
    "Calibrated probability (0-1, at even odds) that the probe is this voice, from the "
    "normalised score and the probe's quality; null for an engine without calibration."
)


class CandidateOutputSerializer(serializers.Serializer):
    voice_id = serializers.CharField()
    voice_name = serializers.CharField()
    score = serializers.FloatField()
    probability = serializers.FloatField(allow_null=True, help_text=PROBABILITY_HELP)


class VoiceIdentifyOutputSerializer(serializers.Serializer):
    matched = serializers.BooleanField()
    voice_id = serializers.CharField(allow_null=True)
    voice_name = serializers.CharField(allow_null=True)
    role_id = serializers.CharField(allow_null=True)
    role_name = serializers.CharField(allow_null=True)
    score = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    decision = serializers.ChoiceField(choices=OUTCOMES, help_text=DECISION_HELP)
    probability = serializers.FloatField(allow_null=True, help_text=PROBABILITY_HELP)
    interrupt = TrueFalseStringField(allow_null=True)
    candidates = CandidateOutputSerializer(many=True)
    model = serializers.CharField()
    processing_time_ms = serializers.IntegerField()
    quality = ProbeQualityOutputSerializer()
    spoof = SpoofOutputSerializer(required=False, help_text="only when the probe was checked")


class VoiceVerifyOutputSerializer(serializers.Serializer):
    voice_id = serializers.CharField()
    score = serializers.FloatField()
    threshold = serializers.FloatField()
    verified = serializers.BooleanField()
    decision = serializers.ChoiceField(choices=OUTCOMES, help_text=DECISION_HELP)
    probability = serializers.FloatField(allow_null=True, help_text=PROBABILITY_HELP)
    model = serializers.CharField()
    processing_time_ms = serializers.IntegerField()
    quality = ProbeQualityOutputSerializer()
    spoof = SpoofOutputSerializer(required=False, help_text="only when the probe was checked")


class FeatureExtractOutputSerializer(serializers.Serializer):
    embedding = serializers.ListField(child=serializers.FloatField())
    dim = serializers.IntegerField()
    model = serializers.CharField()
    quality = ProbeQualityOutputSerializer()


class DeviceRefField(serializers.Field):
    """A bound device: `{"device_id": "..."}` or just the id string."""

    default_error_messages = {"invalid": 'each item must be a device_id or {{"device_id": ...}}'}

    def to_internal_value(self, data) -> str:
        if isinstance(data, dict):
            data = data.get("device_id")
        if not isinstance(data, str) or not data.strip():
            self.fail("invalid")
        return data.strip()

    def to_representation(self, value: str) -> str:
        return value


class RoleRefField(serializers.Field):
    """`{"role_id": "..."}` binds a role, `{}` unbinds."""

    default_error_messages = {"invalid": 'must be {{"role_id": "..."}} or {{}}'}

    def to_internal_value(self, data) -> str | None:
        if not isinstance(data, dict):
            self.fail("invalid")
        role_id = data.get("role_id")
        if role_id in (None, ""):
            return None
        if not isinstance(role_id, str):
            self.fail("invalid")
        return role_id

    def to_representation(self, value):
        return {"role_id": value} if value else {}


class VoiceUpdateInputSerializer(serializers.Serializer):
    threshold = serializers.FloatField(
        min_value=0.0, max_value=1.0, required=False, allow_null=True
    )
    role_bind = RoleRefField(required=False)
    dev_bind = serializers.ListField(child=DeviceRefField(), required=False, allow_empty=True)
