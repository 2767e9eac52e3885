"""The "Tenant operators" group comes from `migrate` (console/migrations/0001), not from
the tests (0002 adds the operating points): nothing here or in the fixtures creates it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from console.permissions import OPERATOR_GROUP

CRUD = ("view", "add", "change", "delete")
EXPECTED = {
    "tenancy.view_tenant",
    "tenancy.view_apitoken",
    "tenancy.add_apitoken",
    "tenancy.change_apitoken",
    *(f"roles.{action}_role" for action in CRUD),
    *(f"devices.{action}_device" for action in CRUD),
    *(f"interrupts.{action}_roleinterrupt" for action in CRUD),
    *(f"voiceprint.{action}_voice" for action in CRUD),
    # console/migrations/0002: fit (add) and reset (delete), never edit by hand
    *(f"voiceprint.{action}_operatingpoint" for action in ("view", "add", "delete")),
    # console/migrations/0003: the audit log, read only
    "audit.view_auditevent",
}


def granted() -> set[str]:
    group = Group.objects.get(name=OPERATOR_GROUP)
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


@pytest.mark.django_db
def test_a_freshly_migrated_database_has_the_group():
    # The session's test database was made by `migrate`, with no help from the tests.
    assert granted() == EXPECTED


@pytest.mark.django_db
def test_the_migration_makes_it_and_takes_it_back():
    call_command("migrate", "console", "zero", verbosity=0)
    assert not Group.objects.filter(name=OPERATOR_GROUP).exists()
    call_command("migrate", "console", verbosity=0)
    assert granted() == EXPECTED


@pytest.mark.django_db
def test_operators_in_the_group_may_use_the_console(django_user_model, client):
    user = django_user_model.objects.create_user("op", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATOR_GROUP))
    assert user.has_perm("voiceprint.add_voice") and not user.has_perm("tenancy.add_tenant")
    client.force_login(user)
    assert client.get("/admin/voiceprint/voice/").status_code == 200
