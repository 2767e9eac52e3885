"""The audit log in the console: logins and actions recorded as their user's, the list
limited to the operator's tenant, read only, exported as CSV and JSON lines."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.services import audit_record
from tests.console.conftest import make_operator
from tests.console.test_operator_isolation import admin_url

pytestmark = pytest.mark.django_db


def events(tenant) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(tenant=tenant).order_by("at", "pk"))


def test_console_logins_and_actions_are_recorded(acme, django_user_model):
    operator = make_operator(django_user_model, "ops", acme.tenant)
    client = Client()
    assert client.login(username="ops", password="pw")
    response = client.post(
        admin_url("roles_role", "add"), {"name": "grandma", "tenant": acme.tenant.pk}
    )
    assert response.status_code == 302, response.content[:500]
    actions = [(e.actor, e.action, e.object_type) for e in events(acme.tenant)]
    assert ("console:ops", "console.login", "user") in actions
    assert ("console:ops", "console.add", "role") in actions
    assert operator.username == "ops"


def test_console_lists_only_the_operators_tenant_and_exports(operator_client, acme, globex):
    audit_record(acme.tenant, action="mine", object_id="a1")
    audit_record(globex.tenant, action="theirs", object_id="g1")
    page = operator_client.get("/admin/audit/auditevent/")
    content = page.content.decode()
    assert page.status_code == 200
    assert "a1" in content and "g1" not in content

    mine = AuditEvent.objects.filter(tenant=acme.tenant)
    exported = operator_client.post(
        "/admin/audit/auditevent/",
        {"action": "export_jsonl", "_selected_action": [str(e.pk) for e in mine]},
    )
    lines = b"".join(exported.streaming_content).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert {row["action"] for row in rows} >= {"mine"}
    assert all(row["tenant_id"] == acme.tenant.pk for row in rows)

    exported = operator_client.post(
        "/admin/audit/auditevent/",
        {"action": "export_csv", "_selected_action": [str(e.pk) for e in mine]},
    )
    text = b"".join(exported.streaming_content).decode()
    assert text.splitlines()[0].startswith("at,tenant_id,actor,action")
    assert "mine" in text and "theirs" not in text
