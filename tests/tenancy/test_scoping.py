"""Another tenant's ids answer exactly like ids that do not exist, and nothing changes."""

import pytest

from devices.models import Device
from interrupts.models import RoleInterrupt
from roles.models import Role
from tests.devices.test_api import MAC, create_device
from tests.helpers import VP, envelope
from tests.roles.test_api import create_role

AGENT = "agent_001"


@pytest.fixture
def owned_by_acme(api):
    role_id = create_role(api, "妈妈")
    create_device(api, device_name="acme kitchen")
    body = {"roleinterrupt": [{"role_id": role_id, "interrupt": "false"}]}
    envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"))
    return role_id


@pytest.mark.django_db
class TestIsolation:
    def test_roles(self, api, other_api, owned_by_acme):
        role_id = owned_by_acme
        envelope(other_api.get(VP + f"roles/{role_id}"), 40400)
        envelope(other_api.delete(VP + f"roles/{role_id}"), 40400)
        assert Role.objects.filter(role_id=role_id).exists()
        assert role_id not in [r["role_id"] for r in envelope(other_api.get(VP + "roles"))]

    def test_devices(self, api, other_api, owned_by_acme):
        envelope(other_api.get(VP + f"devices/{MAC}"), 40400)
        rename = {"device_name": "pwned"}
        envelope(other_api.put(VP + f"devices/{MAC}", rename, format="json"), 40400)
        envelope(other_api.delete(VP + f"devices/{MAC}"), 40400)
        assert envelope(other_api.get(VP + "devices")) == []
        assert Device.objects.get(device_id=MAC).device_name == "acme kitchen"

    def test_device_ids_are_per_tenant(self, api, other_api, owned_by_acme):
        create_device(other_api, device_name="globex kitchen")
        assert envelope(api.get(VP + f"devices/{MAC}"))["device_name"] == "acme kitchen"
        assert envelope(other_api.get(VP + f"devices/{MAC}"))["device_name"] == "globex kitchen"

    def test_roleinterrupt(self, api, other_api, owned_by_acme):
        role_id = owned_by_acme
        body = {"roleinterrupt": [{"role_id": role_id, "interrupt": "true"}]}
        envelope(other_api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"), 40400)
        assert RoleInterrupt.objects.get(role__role_id=role_id).interrupt is False
        listed = envelope(other_api.get(VP + f"roleinterrupt/{AGENT}"))["roleinterrupt"]
        assert [item["role_name"] for item in listed] == ["default"]
