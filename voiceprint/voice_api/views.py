"""Voice API (/v1/voice/): plain JSON, real HTTP statuses, `{"error": {code, message}}`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from core.envelope import VoiceAPIView
from core.fields import validated
from core.input_guard import JSONParser
from voiceprint.audio_input import audio_from_reference
from voiceprint.voice_api import schema, services
from voiceprint.voice_api import serializers as s


class JsonVoiceView(VoiceAPIView):
    parser_classes = [JSONParser]


class VerifyView(JsonVoiceView):
    @extend_schema(**schema.VERIFY)
    def post(self, request):
        params = validated(s.VerifyRequest, request.data)
        verdict = services.verify_pair(
            audio_from_reference(params["audio1"], "audio1"),
            audio_from_reference(params["audio2"], "audio2"),
            params.get("model"),
            params.get("threshold"),
        )
        return Response(s.VerifyReply(verdict).data)


class RegisterView(JsonVoiceView):
    @extend_schema(**schema.REGISTER)
    def post(self, request):
        params = validated(s.RegisterRequest, request.data)
        voice = services.register(
            request.user.tenant,
            audio_from_reference(params["audio"], "audio"),
            name=params["name"],
            labels=params.get("labels"),
            store=params.get("store"),
            engine_name=params.get("model"),
        )
        reply = {"id": voice.voice_id, "name": voice.name, "registered_at": voice.created_at}
        return Response(s.RegisterReply(reply).data)


class IdentifyView(JsonVoiceView):
    @extend_schema(**schema.IDENTIFY)
    def post(self, request):
        params = validated(s.IdentifyRequest, request.data)
        result = services.identify_in_store(
            request.user.tenant,
            audio_from_reference(params["audio"], "audio"),
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
        }
        return Response(s.IdentifyReply(reply).data)


class ForgetView(JsonVoiceView):
    @extend_schema(**schema.FORGET)
    def post(self, request):
        services.forget(request.user.tenant, validated(s.ForgetRequest, request.data)["id"])
        return Response(status=204)


class EmbedView(JsonVoiceView):
    @extend_schema(**schema.EMBED)
    def post(self, request):
        params = validated(s.EmbedRequest, request.data)
        embedded = services.embed(
            audio_from_reference(params["audio"], "audio"), params.get("model")
        )
        reply = {
            "embedding": embedded.vector.tolist(),
            "dim": embedded.dim,
            "model": embedded.model,
        }
        return Response(reply)


class AnalyzeView(JsonVoiceView):
    @extend_schema(**schema.ANALYZE)
    def post(self, request):
        params = validated(s.AnalyzeRequest, request.data)
        attributes, model, elapsed = services.analyze(
            audio_from_reference(params["audio"], "audio"),
            params.get("model"),
            params.get("actions") or [],
        )
        return Response({**attributes, "model": model, "processing_time_ms": elapsed})
