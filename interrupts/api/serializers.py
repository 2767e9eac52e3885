"""Input and output shapes of the role-interrupt endpoints (API.md, "Role interrupt")."""

from rest_framework import serializers

from core.fields import TrueFalseStringField


class RoleInterruptSerializer(serializers.Serializer):
    role_id = serializers.CharField(max_length=32)
    role_name = serializers.CharField(read_only=True)
    interrupt = TrueFalseStringField()


class AgentInterruptsSerializer(serializers.Serializer):
    roleinterrupt = RoleInterruptSerializer(many=True, allow_empty=True)
