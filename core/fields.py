"""Serializer fields and helpers shared by the API apps."""

from rest_framework import serializers


class TrueFalseStringField(serializers.Field):
    """A boolean written as the strings "true"/"false" (as the contract shows), accepting
    real booleans and those strings in any case on input."""

    default_error_messages = {"invalid": 'must be "true", "false" or a boolean'}

    def to_internal_value(self, data) -> bool:
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.strip().lower() in {"true", "false"}:
            return data.strip().lower() == "true"
        self.fail("invalid")

    def to_representation(self, value: bool) -> str:
        return "true" if value else "false"


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    """`data` checked by `serializer_class`; a problem raises the API's 40000."""
    params = serializer_class(data=data)
    params.is_valid(raise_exception=True)
    return params.validated_data
