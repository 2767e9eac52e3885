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


@pytest.mark.django_db
class TestCreateTokenScopes:
    @pytest.fixture
    def initech(self):
        from devices.services import device_create

        run("create_tenant", "initech")
        tenant = Tenant.objects.get(name="initech")
        device_create(tenant, device_id="kitchen")
        device_create(tenant, device_id="hall")
        return tenant

    def test_a_read_token_reads_and_writes_nothing(self, initech):
        out = run("create_token", "initech", "--scope", "read")
        assert "read" in out[0]
        token = ApiToken.objects.get(digest=digest_token(out[-1]))
        assert (token.scope, token.device_id) == ("read", "")
        client = make_client(out[-1])
        envelope(client.get(VP + "roles"))
        envelope(client.post(VP + "roles", {"role_name": "x"}, format="json"), 40300)

    def test_a_device_token_reaches_its_device_only(self, initech):
        plaintext = run("create_token", "initech", "--scope", "device", "--device", "kitchen")[-1]
        token = ApiToken.objects.get(digest=digest_token(plaintext))
        assert (token.scope, token.device_id) == ("device", "kitchen")
        client = make_client(plaintext)
        envelope(client.get(VP + "devices/kitchen"))
        envelope(client.get(VP + "devices/hall"), 40300)
        envelope(client.get(VP + "devices"), 40300)

    def test_the_default_scope_is_admin(self, initech):
        plaintext = run("create_token", "initech")[-1]
        assert ApiToken.objects.get(digest=digest_token(plaintext)).scope == "admin"

    @pytest.mark.parametrize(
        "args",
        [
            ["--scope", "device"],
            ["--scope", "device", "--device", "no-such-device"],
            ["--scope", "read", "--device", "kitchen"],
            ["--device", "kitchen"],
            ["--scope", "root"],
        ],
        ids=["no device", "unknown device", "read with device", "admin with device", "bad scope"],
    )
    def test_refused_arguments_issue_nothing(self, initech, args):
        count = ApiToken.objects.count()
        with pytest.raises(CommandError):
            run("create_token", "initech", *args)
        assert ApiToken.objects.count() == count

    def test_another_tenants_device_is_unknown(self, initech):
        run("create_tenant", "globex")
        with pytest.raises(CommandError, match="device not found"):
            run("create_token", "globex", "--scope", "device", "--device", "kitchen")
