import pytest
from django.core.management import CommandError, call_command

from roles.models import Role
from tenancy.models import ApiToken, Tenant
from tenancy.tokens import digest_token
from tests.conftest import make_client
from tests.helpers import VP, envelope


def run(*args) -> list[str]:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


@pytest.mark.django_db
class TestManagementCommands:
    def test_create_tenant_prints_a_working_token_last(self):
        token = run("create_tenant", "initech")[-1]
        tenant = Tenant.objects.get(name="initech")
        assert ApiToken.objects.get(tenant=tenant).digest == digest_token(token)
        assert Role.objects.get(tenant=tenant).is_default
        envelope(make_client(token).get(VP + "roles"))

    def test_create_tenant_refuses_a_duplicate(self):
        run("create_tenant", "initech")
        with pytest.raises(CommandError):
            run("create_tenant", "initech")
        assert Tenant.objects.filter(name="initech").count() == 1

    def test_create_tenant_refuses_an_empty_name(self):
        with pytest.raises(CommandError):
            run("create_tenant", "  ")

    def test_create_token_by_name_and_id(self):
        first = run("create_tenant", "initech")[-1]
        tenant = Tenant.objects.get(name="initech")
        by_name = run("create_token", "initech", "--label", "ci")[-1]
        by_id = run("create_token", str(tenant.pk))[-1]
        assert len({first, by_name, by_id}) == 3
        for token in (first, by_name, by_id):
            envelope(make_client(token).get(VP + "roles"))
        assert ApiToken.objects.filter(tenant=tenant).count() == 3

    def test_create_token_for_unknown_tenant_fails(self):
        with pytest.raises(CommandError):
            run("create_token", "nobody")
