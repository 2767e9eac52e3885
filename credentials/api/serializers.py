"""Input and output shapes of the token endpoints."""

from rest_framework import serializers

from tenancy.models import ApiToken, TokenScope


class TokenCreateInputSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=TokenScope.values)
    device_id = serializers.CharField(max_length=128, required=False, allow_blank=True)
    label = serializers.CharField(max_length=100, required=False, allow_blank=True)


class TokenOutputSerializer(serializers.ModelSerializer):
    """A token as listed: its prefix names it; neither its plaintext nor its digest."""

    class Meta:
        model = ApiToken
        fields = [
            "prefix",
            "label",
            "scope",
            "device_id",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]


class TokenCreateOutputSerializer(TokenOutputSerializer):
    """A new token, with its plaintext: the only reply that ever carries it."""

    token = serializers.SerializerMethodField()

    class Meta(TokenOutputSerializer.Meta):
        fields = ["token", *TokenOutputSerializer.Meta.fields]

    def get_token(self, token: ApiToken) -> str:
        return self.context["plaintext"]
