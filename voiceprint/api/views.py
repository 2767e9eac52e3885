"""Voiceprint API: voices, identify, verify, extract. Thin: parse, call a service, reply."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request

from core.envelope import VoiceprintAPIView, ok
from core.fields import validated
from core.input_guard import BODY_PARSERS
from devices.selectors import device_get
from roles.selectors import role_get
from voiceprint import selectors, services
from voiceprint.api import schema
from voiceprint.api.scopes import device_in_params, voice_on_device
from voiceprint.api.serializers import (
    VoiceCreateInputSerializer,
    VoiceIdentifyInputSerializer,
    VoiceIdentifyOutputSerializer,
    VoiceOutputSerializer,
    VoiceSampleAddInputSerializer,
    VoiceSampleOutputSerializer,
    VoiceUpdateInputSerializer,
    VoiceVerifyInputSerializer,
    VoiceVerifyOutputSerializer,
    consent_from,
    consent_nested,
    similar_voices_data,
)
from voiceprint.audio_input import AUDIO_PARSERS, read_audio_request, require_audio
from voiceprint.spoofing import SpoofCheck, anti_spoofing_wanted

AUDIO_REQUEST_PARSERS = [*BODY_PARSERS, *AUDIO_PARSERS]


def voice_reply(request: Request, voice_id: str):
    voice = selectors.voice_get(request.user.tenant, voice_id=voice_id)
    return ok(VoiceOutputSerializer(voice, context={"request": request}).data)


def enrollment_reply(request: Request, voice_id: str):
    """The voice object, and the existing voices it could be confused with (named among
    the enrollment issues when they are look-alikes)."""
    voice = selectors.voice_get(request.user.tenant, voice_id=voice_id)
    # A device token learns nothing of the voices of other devices.
    report = services.voice_enrollment_report(voice, seen_from_device=request.user.device_id)
    data = VoiceOutputSerializer(voice, context={"request": request}).data
    data["enrollment"] = report.summary.as_dict()
    data["similar_voices"] = similar_voices_data(report.similar)
    return ok(data)


class VoiceCreateView(VoiceprintAPIView):
    parser_classes = AUDIO_REQUEST_PARSERS
    device_rules = {"post": device_in_params}

    @extend_schema(**schema.CREATE)
    def post(self, request):
        tenant = request.user.tenant
        audio_request = read_audio_request(request)
        params = validated(VoiceCreateInputSerializer, consent_nested(audio_request.params))
        device = device_get(tenant, device_id=params["device_id"])
        role = role_get(tenant, role_id=params["role_id"]) if params.get("role_id") else None
        with services.device_enrollments_reserve([device]):
            voice = services.voice_create(
                tenant,
                audio=require_audio(audio_request),
                devices=[device],
                role=role,
                threshold=params.get("threshold"),
                name=params.get("voice_name", ""),
                force=params["force"],
                consent=consent_from(params),
            )
        return enrollment_reply(request, voice.voice_id)


class VoiceListView(VoiceprintAPIView):
    @extend_schema(**schema.LIST)
    def get(self, request):
        voices = selectors.voice_list(
            request.user.tenant,
            device_id=request.query_params.get("device_id"),
            role_id=request.query_params.get("role_id"),
        )
        return ok(VoiceOutputSerializer(voices, many=True, context={"request": request}).data)


class VoiceDetailView(VoiceprintAPIView):
    @extend_schema(**schema.GET)
    def get(self, request, voice_id: str):
        return voice_reply(request, voice_id)

    @extend_schema(**schema.UPDATE)
    def put(self, request, voice_id: str):
        tenant = request.user.tenant
        voice = selectors.voice_get(tenant, voice_id=voice_id)
        params = validated(VoiceUpdateInputSerializer, request.data)
        changes = {}
        if "threshold" in params:
            changes["threshold"] = params["threshold"]
        if "role_bind" in params:
            role_id = params["role_bind"]
            changes["role"] = role_get(tenant, role_id=role_id) if role_id else None
        if "dev_bind" in params:
            changes["devices"] = [
                device_get(tenant, device_id=d) for d in dict.fromkeys(params["dev_bind"])
            ]
        services.voice_update(voice, **changes)
        return ok()

    @extend_schema(**schema.DELETE)
    def delete(self, request, voice_id: str):
        services.voice_delete(selectors.voice_get(request.user.tenant, voice_id=voice_id))
        return ok()


class VoiceBindView(VoiceDetailView):
    """`PUT voicesbind/{voiceId}`: the same update under the seed's own path."""

    http_method_names = ["put", "options"]

    @extend_schema(**schema.BIND)
    def put(self, request, voice_id: str):
        return super().put(request, voice_id)


class VoiceSamplesView(VoiceprintAPIView):
    parser_classes = AUDIO_REQUEST_PARSERS
    device_rules = {"post": voice_on_device}

    @extend_schema(**schema.LIST_SAMPLES)
    def get(self, request, voice_id: str):
        voice = selectors.voice_get(request.user.tenant, voice_id=voice_id)
        samples = selectors.voice_sample_list(voice)
        data = [
            {"sample": index, **VoiceSampleOutputSerializer(sample).data}
            for index, sample in enumerate(samples)
        ]
        return ok(data)

    @extend_schema(**schema.ADD_SAMPLE)
    def post(self, request, voice_id: str):
        voice = selectors.voice_get(request.user.tenant, voice_id=voice_id)
        audio_request = read_audio_request(request)
        params = validated(VoiceSampleAddInputSerializer, audio_request.params)
        audio = require_audio(audio_request)
        with services.device_enrollments_reserve(voice.devices.all()):
            services.voice_sample_add(voice, audio=audio, force=params["force"])
        return enrollment_reply(request, voice_id)


class VoiceAudioView(VoiceprintAPIView):
    @extend_schema(**schema.AUDIO)
    def get(self, request, voice_id: str):
        voice = selectors.voice_get(request.user.tenant, voice_id=voice_id)
        index = request.query_params.get("sample", "0")
        sample = selectors.voice_sample_get(voice, index=index)
        return FileResponse(
            services.sample_audio_open(sample),
            content_type="audio/wav",
            filename=f"{voice.voice_id}-{index}.wav",
        )


class VoiceExportView(VoiceprintAPIView):
    @extend_schema(**schema.EXPORT)
    def get(self, request, voice_id: str):
        voice = selectors.voice_get(request.user.tenant, voice_id=voice_id)
        archive = services.voice_export(voice)
        return FileResponse(
            archive,
            content_type="application/zip",
            as_attachment=True,
            filename=f"voice-{voice.voice_id}.zip",
        )


class VoiceSampleDetailView(VoiceprintAPIView):
    @extend_schema(**schema.DELETE_SAMPLE)
    def delete(self, request, voice_id: str, index: str):
        voice = selectors.voice_get(request.user.tenant, voice_id=voice_id)
        sample = selectors.voice_sample_get(voice, index=index)
        services.voice_sample_delete(voice, sample_id=sample.pk)
        return voice_reply(request, voice_id)


class VoiceVerifyView(VoiceprintAPIView):
    parser_classes = AUDIO_REQUEST_PARSERS
    device_rules = {"post": voice_on_device}

    @extend_schema(**schema.VERIFY)
    def post(self, request, voice_id: str):
        tenant = request.user.tenant
        voice = selectors.voice_get(tenant, voice_id=voice_id)
        audio_request = read_audio_request(request)
        params = validated(VoiceVerifyInputSerializer, audio_request.params)
        # A device token verifies for its device: that device's default applies.
        device = (
            device_get(tenant, device_id=request.user.device_id) if request.user.device_id else None
        )
        result = services.voice_verify(
            voice,
            audio=require_audio(audio_request),
            anti_spoofing=anti_spoofing_wanted(
                tenant, requested=params["anti_spoofing"], device=device
            ),
        )
        reply = {
            "voice_id": voice.voice_id,
            "score": round(result.score.cosine, 6),
            "threshold": voice.threshold,
            "verified": result.verified,
            "decision": result.decision.outcome,
            "probability": _rounded(result.score.probability),
            "model": result.model,
            "processing_time_ms": result.processing_time_ms,
            "quality": result.quality,
            **spoof_field(result.spoof),
        }
        return ok(VoiceVerifyOutputSerializer(reply).data)


class VoiceIdentifyView(VoiceprintAPIView):
    parser_classes = AUDIO_REQUEST_PARSERS
    device_rules = {"post": device_in_params}

    @extend_schema(**schema.IDENTIFY)
    def post(self, request):
        tenant = request.user.tenant
        audio_request = read_audio_request(request)
        params = validated(VoiceIdentifyInputSerializer, audio_request.params)
        device = device_get(tenant, device_id=params["device_id"])
        result = services.voice_identify(
            tenant,
            device=device,
            audio=require_audio(audio_request),
            agent_id=params.get("agent_id") or None,
            top_k=params["top_k"],
            anti_spoofing=anti_spoofing_wanted(
                tenant, requested=params["anti_spoofing"], device=device
            ),
        )
        return ok(VoiceIdentifyOutputSerializer(identify_reply(result)).data)


def identify_reply(result: services.VoiceIdentifyResult) -> dict:
    best = result.best
    winner = best.voice if result.matched else None
    return {
        "matched": result.matched,
        "voice_id": winner.voice_id if winner else None,
        "voice_name": winner.name if winner else None,
        "role_id": winner.role.role_id if winner and winner.role else None,
        "role_name": winner.role.name if winner and winner.role else None,
        "score": round(best.cosine, 6) if best else None,
        "threshold": best.threshold if best else None,
        "decision": result.decision.outcome,
        "probability": _rounded(best.probability) if best else None,
        "interrupt": result.interrupt,
        "candidates": [
            {
                "voice_id": c.voice.voice_id,
                "voice_name": c.voice.name,
                "score": round(c.cosine, 6),
                "probability": _rounded(c.probability),
            }
            for c in result.candidates
        ],
        "model": result.model,
        "processing_time_ms": result.processing_time_ms,
        "quality": result.quality,
        **spoof_field(result.spoof),
    }


def spoof_field(spoof: SpoofCheck | None) -> dict:
    """The reply's `spoof` object, only when the probe was checked."""
    return {} if spoof is None else {"spoof": spoof.as_dict()}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class FeatureExtractView(VoiceprintAPIView):
    parser_classes = AUDIO_REQUEST_PARSERS

    @extend_schema(**schema.EXTRACT)
    def post(self, request):
        audio = require_audio(read_audio_request(request))
        embedding = services.audio_embed(audio=audio).embedding
        reply = {
            "embedding": embedding.vector.tolist(),
            "dim": embedding.dim,
            "model": embedding.model,
            "quality": embedding.quality.as_dict(),
        }
        return ok(reply)
