"""How a device token's request is kept on its device (core.scopes), for the voice
endpoints: by the `device_id` parameter of an audio request, or by the voice in the URL."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework.request import Request

from voiceprint.audio_input import request_parameter
from voiceprint.selectors import voice_is_bound


def device_in_params(request: Request, token_device: str, url: Mapping[str, str]) -> bool:
    """`voices/create`, `voices/identify`: the request's `device_id` (header, JSON or form
    field) is the token's device."""
    return request_parameter(request, "device_id") == token_device


def voice_on_device(request: Request, token_device: str, url: Mapping[str, str]) -> bool:
    """`voices/{voice_id}/...`: the voice is bound to the token's device (a voice of
    another device and a missing voice are refused alike: the answer says nothing about
    which ids exist)."""
    tenant = request.user.tenant
    return voice_is_bound(tenant, voice_id=url["voice_id"], device_id=token_device)
