"""Request and reply shapes of the Voice API (/v1/voice/), after the seed's field tables."""

from __future__ import annotations

import re

from rest_framework import serializers
from rest_framework.fields import empty

import engine
from voiceprint.api.serializers import (
    ConsentInputSerializer,
    EnrollmentOutputSerializer,
    ProbeQualityOutputSerializer,
    SimilarVoiceOutputSerializer,
    SpoofOutputSerializer,
)
from voiceprint.audio_input import no_audio
from voiceprint.decision import OUTCOMES

ACTIONS = ("age", "gender", "emotion")
MAX_LABELS = 32
MAX_LABEL_KEY_LENGTH = 128
# C0 controls and DEL: a label key is a name, never a line break or a NUL (which PostgreSQL
# refuses in JSON, after the voice's embedding has been sent along with it).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class ModelField(serializers.CharField):
    """An engine name; an unknown one is refused with the list of available engines."""

    def to_internal_value(self, data) -> str:
        name = super().to_internal_value(data)
        if name not in engine.available_engines():
            raise serializers.ValidationError(
                f"unknown model {name!r}; available: {', '.join(engine.available_engines())}"
            )
        return name


class AudioField(serializers.CharField):
    """A required http(s) URL, raw base64 or data URI (read by voiceprint.audio_input).
    Missing, null or blank answers 40001 "no audio given", like the Voiceprint API, rather
    than the 40000 of other required fields."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "http(s) URL, raw base64 or data:audio/...;base64, URI")
        super().__init__(trim_whitespace=True, **kwargs)

    def run_validation(self, data=empty):
        if data is empty or data is None or (isinstance(data, str) and not data.strip()):
            raise no_audio(self.field_name)
        return super().run_validation(data)


class StrictStringField(serializers.CharField):
    """A string that is a JSON string: numbers and booleans are refused, not converted."""

    default_error_messages = {"not_string": "must be a string"}

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("not_string")
        return super().to_internal_value(data)


class ThresholdField(serializers.FloatField):
    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "cosine-distance cutoff; default per engine")
        super().__init__(min_value=0.0, max_value=2.0, required=False, **kwargs)


class PairVerifyInputSerializer(serializers.Serializer):
    model = ModelField(required=False)
    audio1 = AudioField()
    audio2 = AudioField()
    threshold = ThresholdField()
    anti_spoofing = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="check audio2 (the probe) for recorded or synthetic speech; a spoofed probe "
        "is never verified (unset: the tenant's default)",
    )


VOICE_DECISION_HELP = (
    "The calibrated outcome at the same threshold, as the Voiceprint API decides: "
    '"match", "no_match", "uncertain" (too little or too noisy speech, or two voices '
    'too close: ask again) or "spoof" (verify with anti_spoofing: the probe sounds recorded '
    "or synthetic). `verified` / `match` keep the rule distance <= threshold, and a spoofed "
    "probe is never verified."
)


class PairVerifyOutputSerializer(serializers.Serializer):
    verified = serializers.BooleanField()
    distance = serializers.FloatField()
    threshold = serializers.FloatField()
    confidence = serializers.FloatField()
    model = serializers.CharField()
    processing_time_ms = serializers.IntegerField()
    decision = serializers.ChoiceField(choices=OUTCOMES, help_text=VOICE_DECISION_HELP)
    quality = ProbeQualityOutputSerializer(help_text="of audio2, the probe")
    spoof = SpoofOutputSerializer(required=False, help_text="only with anti_spoofing")

    def to_representation(self, instance) -> dict:
        data = super().to_representation(instance)
        if data.get("spoof") is None:
            data.pop("spoof", None)  # the probe was not checked
        return data


class VoiceRegisterInputSerializer(serializers.Serializer):
    model = ModelField(required=False)
    audio = AudioField()
    name = StrictStringField(max_length=128)
    labels = serializers.DictField(child=StrictStringField(max_length=256), required=False)
    store = serializers.RegexField(r"^[\w.\-]{1,64}$", required=False)
    force = serializers.BooleanField(
        default=False,
        help_text="register even when an existing voice of the store would already match "
        "(VOICEPRINT_LOOKALIKE_POLICY=refuse)",
    )
    consent = ConsentInputSerializer(
        required=False,
        allow_null=True,
        help_text="the person's consent to enrollment; required where the tenant requires it",
    )

    def validate_labels(self, labels: dict) -> dict:
        if len(labels) > MAX_LABELS:
            raise serializers.ValidationError(f"at most {MAX_LABELS} labels")
        # The values are StrictStringFields (no NUL); the keys are checked here.
        for key in labels:
            if len(key) > MAX_LABEL_KEY_LENGTH:
                raise serializers.ValidationError(
                    f"keys must be at most {MAX_LABEL_KEY_LENGTH} characters"
                )
            if _CONTROL_CHARACTERS.search(key):
                raise serializers.ValidationError("keys must not contain control characters")
        return labels


class VoiceRegisterOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    registered_at = serializers.DateTimeField()
    enrollment = EnrollmentOutputSerializer()
    similar_voices = SimilarVoiceOutputSerializer(many=True)


class StoreIdentifyInputSerializer(serializers.Serializer):
    model = ModelField(required=False)
    audio = AudioField()
    top_k = serializers.IntegerField(min_value=1, max_value=100, default=5)
    threshold = ThresholdField()
    store = serializers.RegexField(r"^[\w.\-]{1,64}$", required=False)


class StoreMatchOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    labels = serializers.DictField(child=serializers.CharField())
    distance = serializers.FloatField()
    confidence = serializers.FloatField()
    match = serializers.BooleanField()


class StoreIdentifyOutputSerializer(serializers.Serializer):
    matches = StoreMatchOutputSerializer(many=True)
    model = serializers.CharField()
    processing_time_ms = serializers.IntegerField()
    quality = ProbeQualityOutputSerializer()
    decision = serializers.ChoiceField(choices=OUTCOMES, help_text=VOICE_DECISION_HELP)


class VoiceForgetInputSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=64)


class RecordingEmbedInputSerializer(serializers.Serializer):
    model = ModelField(required=False)
    audio = AudioField()


class RecordingEmbedOutputSerializer(serializers.Serializer):
    embedding = serializers.ListField(child=serializers.FloatField())
    dim = serializers.IntegerField()
    model = serializers.CharField()
    quality = ProbeQualityOutputSerializer()


class RecordingAnalyzeInputSerializer(serializers.Serializer):
    model = ModelField(required=False)
    audio = AudioField()
    actions = serializers.ListField(
        child=serializers.ChoiceField(choices=ACTIONS),
        required=False,
        allow_empty=True,
        allow_null=True,  # Go clients send an empty list as null
    )


class AttributeOutputSerializer(serializers.Serializer):
    label = serializers.CharField()
    scores = serializers.DictField(child=serializers.FloatField())


class RecordingAnalyzeOutputSerializer(serializers.Serializer):
    age = AttributeOutputSerializer(required=False)
    gender = AttributeOutputSerializer(required=False)
    emotion = AttributeOutputSerializer(required=False)
    model = serializers.CharField()
    processing_time_ms = serializers.IntegerField()


class ErrorBodyOutputSerializer(serializers.Serializer):
    code = serializers.IntegerField()
    message = serializers.CharField()


class VoiceErrorOutputSerializer(serializers.Serializer):
    error = ErrorBodyOutputSerializer()
