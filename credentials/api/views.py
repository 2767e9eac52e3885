"""The token endpoints (admin scope only): thin views over credentials' services."""

from drf_spectacular.utils import extend_schema

from core.envelope import VoiceprintAPIView, ok
from core.fields import validated
from credentials import selectors, services
from credentials.api import schema
from credentials.api.serializers import (
    TokenCreateInputSerializer,
    TokenCreateOutputSerializer,
    TokenOutputSerializer,
)


class TokenListView(VoiceprintAPIView):
    readable = False  # credentials are an admin's business, even to list

    @extend_schema(**schema.LIST)
    def get(self, request):
        tokens = selectors.token_list(request.user.tenant)
        return ok(TokenOutputSerializer(tokens, many=True).data)

    @extend_schema(**schema.CREATE)
    def post(self, request):
        params = validated(TokenCreateInputSerializer, request.data)
        token, issued = services.token_create(request.user.tenant, **params)
        context = {"plaintext": issued.plaintext}
        return ok(TokenCreateOutputSerializer(token, context=context).data)


class TokenDetailView(VoiceprintAPIView):
    readable = False

    @extend_schema(**schema.DELETE)
    def delete(self, request, prefix: str):
        services.token_revoke_by_prefix(request.user.tenant, prefix=prefix)
        return ok()
