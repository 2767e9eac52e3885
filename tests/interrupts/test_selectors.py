"""interrupts.selectors, on the rows the services write."""

from __future__ import annotations

import pytest

from interrupts.selectors import agent_uncertain_interrupt_get
from interrupts.services import agent_uncertain_interrupt_update
from tests import factories as make

pytestmark = pytest.mark.django_db


def test_an_agent_never_set_may_not_be_interrupted_by_an_uncertain_speaker():
    assert agent_uncertain_interrupt_get(make.tenant(), agent_id="agent_001") is False


def test_the_stored_setting_is_read_per_agent():
    acme = make.tenant()
    agent_uncertain_interrupt_update(acme, agent_id="agent_001", uncertain_interrupt=True)
    assert agent_uncertain_interrupt_get(acme, agent_id="agent_001") is True
    assert agent_uncertain_interrupt_get(acme, agent_id="agent_002") is False
    agent_uncertain_interrupt_update(acme, agent_id="agent_001", uncertain_interrupt=False)
    assert agent_uncertain_interrupt_get(acme, agent_id="agent_001") is False


def test_another_tenants_setting_is_not_read():
    acme, globex = make.tenant("acme"), make.tenant("globex")
    agent_uncertain_interrupt_update(acme, agent_id="agent_001", uncertain_interrupt=True)
    assert agent_uncertain_interrupt_get(globex, agent_id="agent_001") is False
    agent_uncertain_interrupt_update(globex, agent_id="agent_001", uncertain_interrupt=False)
    assert agent_uncertain_interrupt_get(acme, agent_id="agent_001") is True
