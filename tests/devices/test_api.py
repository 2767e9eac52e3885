import pytest

from tests.helpers import VP, envelope

MAC = "11:22:33:44:55:66"


def create_device(api, device_id: str = MAC, **extra) -> dict:
    return envelope(api.post(VP + "devices", {"device_id": device_id, **extra}, format="json"))


@pytest.mark.django_db
class TestDevices:
    def test_create_returns_the_device_object(self, api):
        device = create_device(api, device_name="kitchen")
        assert device["device_id"] == MAC and device["device_name"] == "kitchen"
        assert device["voices"] == []
        assert device["stats"] == {
            "voice_count": 0,
            "identify_count": 0,
            "matched_count": 0,
            "last_identify_at": None,
        }
        assert device["created_at"].endswith("Z")

    def test_name_defaults_to_the_id(self, api):
        assert create_device(api)["device_name"] == MAC

    def test_list_and_get(self, api):
        create_device(api)
        create_device(api, "dev-2")
        assert [d["device_id"] for d in envelope(api.get(VP + "devices"))] == [MAC, "dev-2"]
        assert envelope(api.get(VP + f"devices/{MAC}"))["device_id"] == MAC

    def test_duplicate_device_id_is_40900(self, api):
        create_device(api)
        envelope(api.post(VP + "devices", {"device_id": MAC}, format="json"), 40900)

    @pytest.mark.parametrize("device_id", ["", "has space", "x" * 129, "/slash", "ü-mlaut"])
    def test_invalid_device_id_is_40000(self, api, device_id):
        response = api.post(VP + "devices", {"device_id": device_id}, format="json")
        envelope(response, 40000)
        assert "device_id" in response.json()["msg"]

    def test_missing_device_id_is_40000(self, api):
        envelope(api.post(VP + "devices", {"device_name": "x"}, format="json"), 40000)

    def test_rename(self, api):
        create_device(api)
        renamed = envelope(api.put(VP + f"devices/{MAC}", {"device_name": "客厅"}, format="json"))
        assert renamed["device_name"] == "客厅"
        assert envelope(api.get(VP + f"devices/{MAC}"))["device_name"] == "客厅"

    def test_rename_needs_a_name(self, api):
        create_device(api)
        envelope(api.put(VP + f"devices/{MAC}", {}, format="json"), 40000)

    def test_delete(self, api):
        create_device(api)
        envelope(api.delete(VP + f"devices/{MAC}"))
        envelope(api.get(VP + f"devices/{MAC}"), 40400)

    def test_unknown_device_is_40400_everywhere(self, api):
        envelope(api.get(VP + "devices/nope"), 40400)
        envelope(api.put(VP + "devices/nope", {"device_name": "x"}, format="json"), 40400)
        envelope(api.delete(VP + "devices/nope"), 40400)
