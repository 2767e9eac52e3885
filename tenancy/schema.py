"""OpenAPI helpers: how the `{code, msg, data}` envelope is described."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers


def enveloped(data: serializers.BaseSerializer | None):
    """Response schema of a Voiceprint API reply whose `data` is `data` (None: null)."""
    if data is None:
        name, data_field = "EmptyEnvelope", serializers.JSONField(allow_null=True, default=None)
    else:
        many = isinstance(data, serializers.ListSerializer)
        inner = data.child if many else data
        name = f"{type(inner).__name__.removesuffix('Serializer')}{'List' if many else ''}Envelope"
        data_field = data
    return {
        200: inline_serializer(
            name=name,
            fields={
                "code": serializers.IntegerField(help_text="0 on success, else a business code"),
                "msg": serializers.CharField(help_text='"" on success, else the error'),
                "data": data_field,
            },
        )
    }
