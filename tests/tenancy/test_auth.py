"""Bearer tokens: hashed at rest, compared in constant time, one tenant each."""

import pytest
from django.core.management import call_command

from tenancy.models import ApiToken
from tenancy.services import token_revoke
from tenancy.tokens import digest_token
from tests.conftest import make_client
from tests.helpers import VP, envelope


@pytest.mark.django_db
class TestBearerAuth:
    def test_a_refusal_carries_the_bearer_challenge(self, tenant):
        response = make_client(None).get(VP + "roles")
        envelope(response, 40100)
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'

    def test_missing_token_is_40100(self, tenant):
        envelope(make_client(None).get(VP + "roles"), 40100)

    def test_wrong_scheme_is_40100(self, tenant_and_token):
        client = make_client(None)
        client.credentials(HTTP_AUTHORIZATION=f"Token {tenant_and_token[1]}")
        envelope(client.get(VP + "roles"), 40100)

    @pytest.mark.parametrize("token", ["nonsense", "vp_12345678_wrong", "vp__", "Bearer"])
    def test_unknown_token_is_40100(self, tenant, token):
        envelope(make_client(token).get(VP + "roles"), 40100)

    def test_token_with_right_prefix_but_wrong_secret_is_40100(self, tenant_and_token):
        token = tenant_and_token[1]
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        envelope(make_client(forged).get(VP + "roles"), 40100)

    def test_revoked_token_is_40100(self, tenant_and_token):
        tenant, token = tenant_and_token
        token_revoke(ApiToken.objects.get(tenant=tenant))
        envelope(make_client(token).get(VP + "roles"), 40100)

    def test_inactive_tenant_is_40100(self, tenant_and_token):
        tenant, token = tenant_and_token
        tenant.is_active = False
        tenant.save()
        envelope(make_client(token).get(VP + "roles"), 40100)

    def test_token_is_stored_only_as_a_hash(self, tenant_and_token):
        tenant, token = tenant_and_token
        stored = ApiToken.objects.get(tenant=tenant)
        assert stored.digest == digest_token(token)
        for value in (stored.digest, stored.prefix, stored.label):
            assert token not in value
        assert len(token) >= 40  # vp_ + 8-char prefix + 43 url-safe chars (256 bits)

    def test_use_is_recorded(self, tenant_and_token, api):
        envelope(api.get(VP + "roles"))
        assert ApiToken.objects.get(tenant=tenant_and_token[0]).last_used_at is not None

    def test_second_token_works_too(self, tenant, capsys):
        call_command("create_token", "acme")
        token = capsys.readouterr().out.strip().splitlines()[-1]
        envelope(make_client(token).get(VP + "roles"))
