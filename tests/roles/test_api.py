import pytest

from roles.models import Role
from tests.helpers import VP, envelope


def create_role(api, name: str) -> str:
    return envelope(api.post(VP + "roles", {"role_name": name}, format="json"))["role_id"]


@pytest.mark.django_db
class TestRoles:
    def test_every_tenant_starts_with_its_default_role(self, api):
        roles = envelope(api.get(VP + "roles"))
        assert len(roles) == 1
        assert set(roles[0]) == {"role_id", "role_name", "created_at", "updated_at"}
        assert roles[0]["created_at"].endswith("Z")

    def test_create_list_get(self, api):
        role_id = create_role(api, "妈妈")
        role = envelope(api.get(VP + f"roles/{role_id}"))
        assert role["role_id"] == role_id and role["role_name"] == "妈妈"
        assert role_id in [r["role_id"] for r in envelope(api.get(VP + "roles"))]

    def test_create_requires_role_name(self, api):
        response = api.post(VP + "roles", {}, format="json")
        envelope(response, 40000)
        assert "role_name" in response.json()["msg"]

    def test_too_long_name_is_40000(self, api):
        envelope(api.post(VP + "roles", {"role_name": "x" * 65}, format="json"), 40000)

    def test_duplicate_name_is_40900(self, api):
        create_role(api, "dad")
        envelope(api.post(VP + "roles", {"role_name": "dad"}, format="json"), 40900)

    def test_unknown_role_is_40400(self, api):
        envelope(api.get(VP + "roles/nope"), 40400)
        envelope(api.delete(VP + "roles/nope"), 40400)

    def test_delete(self, api):
        role_id = create_role(api, "dad")
        envelope(api.delete(VP + f"roles/{role_id}"))
        envelope(api.get(VP + f"roles/{role_id}"), 40400)

    def test_default_role_cannot_be_deleted(self, api, tenant):
        default = Role.objects.get(tenant=tenant, is_default=True)
        envelope(api.delete(VP + f"roles/{default.role_id}"), 40900)
        assert Role.objects.filter(pk=default.pk).exists()

    def test_form_encoded_body_works_too(self, api):
        data = envelope(api.post(VP + "roles", {"role_name": "kid"}))
        assert data["role_id"]
