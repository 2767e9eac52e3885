"""Input and output shapes of the role-interrupt endpoints (API.md, "Role interrupt")."""

from rest_framework import serializers

from core.fields import TrueFalseStringField


class RoleInterruptOutputSerializer(serializers.Serializer):
    role_id = serializers.CharField()
    role_name = serializers.CharField()
    interrupt = TrueFalseStringField()


class RoleInterruptListOutputSerializer(serializers.Serializer):
    roleinterrupt = RoleInterruptOutputSerializer(many=True)


class RoleInterruptSettingInputSerializer(serializers.Serializer):
    """One role's setting; a `role_name` sent along (as GET shows it) is ignored."""

    role_id = serializers.CharField(max_length=32)
    interrupt = TrueFalseStringField()


class RoleInterruptUpdateInputSerializer(serializers.Serializer):
    roleinterrupt = RoleInterruptSettingInputSerializer(many=True, allow_empty=True)
