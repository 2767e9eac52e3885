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
        tenant, agent_id = request.user.tenant, _checked_agent_id(agent_id)
        settings = selectors.role_interrupt_list(tenant, agent_id=agent_id)
        reply = {
            "roleinterrupt": [asdict(setting) for setting in settings],
            "uncertain_interrupt": selectors.agent_uncertain_interrupt_get(
                tenant, agent_id=agent_id
            ),
        }
        return ok(RoleInterruptListOutputSerializer(reply).data)

    @extend_schema(**schema.UPDATE)
    def put(self, request, agent_id: str):
        params = validated(RoleInterruptUpdateInputSerializer, request.data)
        items = params.get("roleinterrupt")
        services.agent_interrupts_update(
            request.user.tenant,
            agent_id=_checked_agent_id(agent_id),
            role_settings=None if items is None else {i["role_id"]: i["interrupt"] for i in items},
            uncertain_interrupt=params.get("uncertain_interrupt"),
        )
        return ok()
