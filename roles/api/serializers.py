"""Input and output shapes of the role endpoints (API.md, "Roles")."""

from rest_framework import serializers

from roles.models import Role


class RoleOutputSerializer(serializers.ModelSerializer):
    role_name = serializers.CharField(source="name")

    class Meta:
        model = Role
        fields = ["role_id", "role_name", "created_at", "updated_at"]


class RoleCreateInputSerializer(serializers.Serializer):
    role_name = serializers.CharField(max_length=64, trim_whitespace=True)


class RoleCreateOutputSerializer(serializers.Serializer):
    role_id = serializers.CharField()
