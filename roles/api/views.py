"""The role endpoints: thin views over roles.services and roles.selectors."""

from drf_spectacular.utils import extend_schema

from core.envelope import VoiceprintAPIView, ok
from core.fields import validated
from roles import selectors, services
from roles.api import schema
from roles.api.serializers import (
    RoleCreateInputSerializer,
    RoleCreateOutputSerializer,
    RoleOutputSerializer,
)


class RoleListView(VoiceprintAPIView):
    @extend_schema(**schema.LIST)
    def get(self, request):
        roles = selectors.role_list(request.user.tenant)
        return ok(RoleOutputSerializer(roles, many=True).data)

    @extend_schema(**schema.CREATE)
    def post(self, request):
        params = validated(RoleCreateInputSerializer, request.data)
        role = services.role_create(request.user.tenant, name=params["role_name"])
        return ok(RoleCreateOutputSerializer(role).data)


class RoleDetailView(VoiceprintAPIView):
    @extend_schema(**schema.GET)
    def get(self, request, role_id: str):
        role = selectors.role_get(request.user.tenant, role_id=role_id)
        return ok(RoleOutputSerializer(role).data)

    @extend_schema(**schema.DELETE)
    def delete(self, request, role_id: str):
        services.role_delete(selectors.role_get(request.user.tenant, role_id=role_id))
        return ok()
