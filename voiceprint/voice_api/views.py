"""Voice API (/v1/voice/): plain JSON, real HTTP statuses, `{"error": {code, message}}`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from core.envelope import VoiceAPIView
from core.fields import validated
from core.input_guard import JSONParser
from voiceprint.api.serializers import consent_from, similar_voices_data
from voiceprint.audio_input import audio_from_reference
from voiceprint.models import DEFAULT_STORE
from voiceprint.selectors import voice_get
from voiceprint.services import audio_embed, voice_create, voice_delete, voice_enrollment_report
from voiceprint.spoofing import anti_spoofing_wanted
from voiceprint.voice_api import schema, services
from voiceprint.voice_api import serializers as s


class JsonVoiceView(VoiceAPIView):
    parser_classes = [JSONParser]


class PairVerifyView(JsonVoiceView):
    @extend_schema(**schema.VERIFY)
    def post(self, request):
        params = validated(s.PairVerifyInputSerializer, request.data)
        result = services.pair_verify(
            request.user.tenant,
            audio1=audio_from_reference(params["audio1"], "audio1"),
            audio2=audio_from_reference(params["audio2"], "audio2"),
            engine_name=params.get("model"),
            threshold=params.get("threshold"),
            anti_spoofing=anti_spoofing_wanted(
                request.user.tenant, requested=params["anti_spoofing"]
            ),
        )
        return Response(s.PairVerifyOutputSerializer(result).data)


class VoiceRegisterView(JsonVoiceView):
    @extend_schema(**schema.REGISTER)
    def post(self, request):
        params = validated(s.VoiceRegisterInputSerializer, request.data)
        # A voice of the shared store (visible in GET /v1/voiceprint/voices), bound to no device.
        voice = voice_create(
            request.user.tenant,
            audio=audio_from_reference(params["audio"], "audio"),
            name=params["name"],
            labels=params.get("labels"),
            store=params.get("store", DEFAULT_STORE),
            engine_name=params.get("model"),
            force=params["force"],
            consent=consent_from(params),
        )
        report = voice_enrollment_report(voice)
        reply = {
            "id": voice.voice_id,
            "name": voice.name,
            "registered_at": voice.created_at,
            "enrollment": report.summary.as_dict(),
            "similar_voices": similar_voices_data(report.similar),
        }
        return Response(s.VoiceRegisterOutputSerializer(reply).data)


class StoreIdentifyView(JsonVoiceView):
    @extend_schema(**schema.IDENTIFY)
    def post(self, request):
        params = validated(s.StoreIdentifyInputSerializer, request.data)
        result = services.store_identify(
            request.user.tenant,
            audio=audio_from_reference(params["audio"], "audio"),
            store=params.get("store"),
            engine_name=params.get("model"),
            top_k=params["top_k"],
            threshold=params.get("threshold"),
        )
        matches = [
            {
                "id": m.voice.voice_id,
                "name": m.voice.name,
                "labels": m.voice.labels,
                "distance": m.distance,
                "confidence": m.confidence,
                "match": m.match,
            }
            for m in result.matches
        ]
        reply = {
            "matches": matches,
            "model": result.model,
            "processing_time_ms": result.processing_time_ms,
            "quality": result.quality,
            "decision": result.decision,
        }
        return Response(s.StoreIdentifyOutputSerializer(reply).data)


class VoiceForgetView(JsonVoiceView):
    @extend_schema(**schema.FORGET)
    def post(self, request):
        voice_id = validated(s.VoiceForgetInputSerializer, request.data)["id"]
        voice_delete(voice_get(request.user.tenant, voice_id=voice_id))
        return Response(status=204)


class RecordingEmbedView(JsonVoiceView):
    @extend_schema(**schema.EMBED)
    def post(self, request):
        params = validated(s.RecordingEmbedInputSerializer, request.data)
        audio = audio_from_reference(params["audio"], "audio")
        embedding = audio_embed(audio=audio, engine_name=params.get("model")).embedding
        reply = {
            "embedding": embedding.vector.tolist(),
            "dim": embedding.dim,
            "model": embedding.model,
            "quality": embedding.quality.as_dict(),
        }
        return Response(reply)


class RecordingAnalyzeView(JsonVoiceView):
    @extend_schema(**schema.ANALYZE)
    def post(self, request):
        params = validated(s.RecordingAnalyzeInputSerializer, request.data)
        attributes, model, elapsed = services.recording_analyze(
            audio=audio_from_reference(params["audio"], "audio"),
            engine_name=params.get("model"),
            actions=params.get("actions") or [],
        )
        return Response({**attributes, "model": model, "processing_time_ms": elapsed})
