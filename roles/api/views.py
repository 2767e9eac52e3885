"""The role endpoints: thin views over roles.services and roles.selectors."""

from drf_spectacular.utils import extend_schema

from core.envelope import VoiceprintAPIView, ok
from roles import selectors, services
from roles.api import schema
from roles.api.serializers import RoleCreateSerializer, RoleSerializer


class RoleListView(VoiceprintAPIView):
    @extend_schema(**schema.LIST)
    def get(self, request):
        return ok(RoleSerializer(selectors.role_list(request.user.tenant), many=True).data)

    @extend_schema(**schema.CREATE)
    def post(self, request):
        params = RoleCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        role = services.create_role(request.user.tenant, params.validated_data["role_name"])
        return ok({"role_id": role.role_id})


class RoleDetailView(VoiceprintAPIView):
    @extend_schema(**schema.GET)
    def get(self, request, role_id: str):
        return ok(RoleSerializer(selectors.role_get(request.user.tenant, role_id)).data)

    @extend_schema(**schema.DELETE)
    def delete(self, request, role_id: str):
        services.delete_role(selectors.role_get(request.user.tenant, role_id))
        return ok()
