"""The role-interrupt endpoints: thin views over interrupts.services and selectors."""

from dataclasses import asdict

from drf_spectacular.utils import extend_schema

from core.envelope import VoiceprintAPIView, ok
from core.exceptions import invalid
from interrupts import selectors, services
from interrupts.api import schema
from interrupts.api.serializers import AgentInterruptsSerializer

MAX_AGENT_ID_LENGTH = 128


def _checked_agent_id(agent_id: str) -> str:
    if len(agent_id) > MAX_AGENT_ID_LENGTH:
        raise invalid("agent_id", f"at most {MAX_AGENT_ID_LENGTH} characters")
    return agent_id


class RoleInterruptView(VoiceprintAPIView):
    @extend_schema(**schema.GET)
    def get(self, request, agent_id: str):
        settings = selectors.agent_settings(request.user.tenant, _checked_agent_id(agent_id))
        reply = AgentInterruptsSerializer({"roleinterrupt": [asdict(s) for s in settings]})
        return ok(reply.data)

    @extend_schema(**schema.UPDATE)
    def put(self, request, agent_id: str):
        params = AgentInterruptsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        items = params.validated_data["roleinterrupt"]
        settings = {item["role_id"]: item["interrupt"] for item in items}
        services.update_agent_settings(request.user.tenant, _checked_agent_id(agent_id), settings)
        return ok()
