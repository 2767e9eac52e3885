"""Input and output shapes of the role-interrupt endpoints (API.md, "Role interrupt")."""

from rest_framework import serializers

from core.fields import TrueFalseStringField

UNCERTAIN_HELP = (
    'Whether a speaker identify is uncertain about (decision "uncertain": too little or '
    'too noisy speech, or two voices too close to tell apart) may interrupt the agent; "false" '
    "for an agent never set."
)


class RoleInterruptOutputSerializer(serializers.Serializer):
    role_id = serializers.CharField()
    role_name = serializers.CharField()
    interrupt = TrueFalseStringField()


class RoleInterruptListOutputSerializer(serializers.Serializer):
    roleinterrupt = RoleInterruptOutputSerializer(many=True)
    uncertain_interrupt = TrueFalseStringField(help_text=UNCERTAIN_HELP)


class RoleInterruptSettingInputSerializer(serializers.Serializer):
    """One role's setting; a `role_name` sent along (as GET shows it) is ignored."""

    role_id = serializers.CharField(max_length=32)
    interrupt = TrueFalseStringField()


class RoleInterruptUpdateInputSerializer(serializers.Serializer):
    """Either part may be left out (left as it is), not both."""

    roleinterrupt = RoleInterruptSettingInputSerializer(
        many=True,
        allow_empty=True,
        required=False,
        help_text="Required without uncertain_interrupt.",
    )
    uncertain_interrupt = TrueFalseStringField(
        required=False, help_text=UNCERTAIN_HELP + " Left out: unchanged."
    )

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError(
                {"roleinterrupt": "required unless uncertain_interrupt is given"}
            )
        return attrs
