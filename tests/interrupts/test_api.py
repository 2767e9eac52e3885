import pytest

from tests.helpers import VP, envelope
from tests.roles.test_api import create_role

AGENT = "agent_001"


def settings_of(api, agent: str = AGENT) -> dict[str, str]:
    data = envelope(api.get(VP + f"roleinterrupt/{agent}"))
    return {item["role_name"]: item["interrupt"] for item in data["roleinterrupt"]}


@pytest.mark.django_db
class TestRoleInterrupt:
    def test_every_role_is_listed_and_true_by_default(self, api):
        create_role(api, "妈妈")
        data = envelope(api.get(VP + f"roleinterrupt/{AGENT}"))
        assert set(data) == {"roleinterrupt"}
        fields = {"role_id", "role_name", "interrupt"}
        assert all(set(item) == fields for item in data["roleinterrupt"])
        assert settings_of(api) == {"default": "true", "妈妈": "true"}

    def test_put_then_get(self, api):
        mom, dad = create_role(api, "妈妈"), create_role(api, "爸爸")
        body = {"roleinterrupt": [
            {"role_id": mom, "role_name": "ignored", "interrupt": "true"},
            {"role_id": dad, "role_name": "妈妈", "interrupt": "false"},
        ]}
        assert envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json")) is None
        assert settings_of(api) == {"default": "true", "妈妈": "true", "爸爸": "false"}
        # Settings are per agent.
        assert settings_of(api, "agent_002")["爸爸"] == "true"

    @pytest.mark.parametrize(
        "value,expected", [(False, "false"), (True, "true"), ("FALSE", "false")]
    )
    def test_booleans_and_strings_are_accepted(self, api, value, expected):
        dad = create_role(api, "爸爸")
        body = {"roleinterrupt": [{"role_id": dad, "interrupt": value}]}
        envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"))
        assert settings_of(api)["爸爸"] == expected

    def test_update_overwrites(self, api):
        dad = create_role(api, "爸爸")
        for value in ("false", "true"):
            body = {"roleinterrupt": [{"role_id": dad, "interrupt": value}]}
            envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"))
        assert settings_of(api)["爸爸"] == "true"

    def test_unknown_role_is_40400_and_nothing_changes(self, api):
        dad = create_role(api, "爸爸")
        body = {"roleinterrupt": [
            {"role_id": dad, "interrupt": "false"},
            {"role_id": "nope", "interrupt": "false"},
        ]}
        envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"), 40400)
        assert settings_of(api)["爸爸"] == "true"

    @pytest.mark.parametrize("body", [
        {},
        {"roleinterrupt": "yes"},
        {"roleinterrupt": [{"interrupt": "true"}]},
        {"roleinterrupt": [{"role_id": "x", "interrupt": "maybe"}]},
        {"roleinterrupt": [{"role_id": "x"}]},
    ])
    def test_invalid_body_is_40000(self, api, body):
        envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"), 40000)

    def test_too_long_agent_id_is_40000(self, api):
        envelope(api.get(VP + "roleinterrupt/" + "a" * 129), 40000)

    def test_deleted_role_takes_its_settings_along(self, api):
        dad = create_role(api, "爸爸")
        body = {"roleinterrupt": [{"role_id": dad, "interrupt": "false"}]}
        envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"))
        envelope(api.delete(VP + f"roles/{dad}"))
        assert "爸爸" not in settings_of(api)
