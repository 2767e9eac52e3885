"""interrupts.services: an agent's settings written together, all or nothing."""

from __future__ import annotations

import pytest

from core.exceptions import ApiError, ErrorCode
from interrupts.models import AgentPolicy
from interrupts.selectors import agent_uncertain_interrupt_get, role_interrupt_list
from interrupts.services import agent_interrupts_update
from tests import factories as make

pytestmark = pytest.mark.django_db
AGENT = "agent_001"


def roles_of(tenant) -> dict[str, bool]:
    return {s.role_name: s.interrupt for s in role_interrupt_list(tenant, agent_id=AGENT)}


def test_both_parts_are_stored():
    acme = make.tenant()
    staff = make.role(acme, "staff")
    agent_interrupts_update(
        acme, agent_id=AGENT, role_settings={staff.role_id: False}, uncertain_interrupt=True
    )
    assert roles_of(acme) == {"default": True, "staff": False}
    assert agent_uncertain_interrupt_get(acme, agent_id=AGENT) is True


def test_a_part_left_out_is_left_as_it_is():
    acme = make.tenant()
    staff = make.role(acme, "staff")
    agent_interrupts_update(
        acme, agent_id=AGENT, role_settings={staff.role_id: False}, uncertain_interrupt=True
    )
    agent_interrupts_update(acme, agent_id=AGENT, role_settings={staff.role_id: True})
    assert agent_uncertain_interrupt_get(acme, agent_id=AGENT) is True
    agent_interrupts_update(acme, agent_id=AGENT, uncertain_interrupt=False)
    assert roles_of(acme)["staff"] is True
    assert agent_uncertain_interrupt_get(acme, agent_id=AGENT) is False
    assert AgentPolicy.objects.filter(tenant=acme).count() == 1


def test_an_unknown_role_stores_neither_part():
    acme = make.tenant()
    staff = make.role(acme, "staff")
    with pytest.raises(ApiError) as refused:
        agent_interrupts_update(
            acme,
            agent_id=AGENT,
            role_settings={staff.role_id: False, "missing": False},
            uncertain_interrupt=True,
        )
    assert refused.value.code == ErrorCode.NOT_FOUND
    assert roles_of(acme)["staff"] is True
    assert not AgentPolicy.objects.exists()
