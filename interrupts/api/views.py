"""The role-interrupt endpoints: thin views over interrupts.services and selectors."""

from dataclasses import asdict

from drf_spectacular.utils import extend_schema

from core.envelope import VoiceprintAPIView, ok
from core.exceptions import invalid
from core.fields import validated
from interrupts import selectors, services
from interrupts.api import schema
from interrupts.api.serializers import (
    RoleInterruptListOutputSerializer,
    RoleInterruptUpdateInputSerializer,
)

MAX_AGENT_ID_LENGTH = 128


def _checked_agent_id(agent_id: str) -> str:
    if len(agent_id) > MAX_AGENT_ID_LENGTH:
        raise invalid("agent_id", f"at most {MAX_AGENT_ID_LENGTH} characters")
    return agent_id


class RoleInterruptView(VoiceprintAPIView):
    @extend_schema(**schema.GET)
    def get(self, request, agent_id: str):
        settings = selectors.role_interrupt_list(
            request.user.tenant, agent_id=_checked_agent_id(agent_id)
        )
        reply = {"roleinterrupt": [asdict(setting) for setting in settings]}
        return ok(RoleInterruptListOutputSerializer(reply).data)

    @extend_schema(**schema.UPDATE)
    def put(self, request, agent_id: str):
        items = validated(RoleInterruptUpdateInputSerializer, request.data)["roleinterrupt"]
        services.role_interrupt_update(
            request.user.tenant,
            agent_id=_checked_agent_id(agent_id),
            settings={item["role_id"]: item["interrupt"] for item in items},
        )
        return ok()
