import pytest

from tests.helpers import VP, envelope
from tests.roles.test_api import create_role

AGENT = "agent_001"


def settings_of(api, agent: str = AGENT) -> dict[str, str]:
    data = envelope(api.get(VP + f"roleinterrupt/{agent}"))
    return {item["role_name"]: item["interrupt"] for item in data["roleinterrupt"]}


def uncertain_of(api, agent: str = AGENT) -> str:
    return envelope(api.get(VP + f"roleinterrupt/{agent}"))["uncertain_interrupt"]


def put(api, body: dict, code: int = 0, agent: str = AGENT):
    return envelope(api.put(VP + f"roleinterrupt/{agent}", body, format="json"), code)


@pytest.mark.django_db
class TestRoleInterrupt:
    def test_every_role_is_listed_and_true_by_default(self, api):
        create_role(api, "妈妈")
        data = envelope(api.get(VP + f"roleinterrupt/{AGENT}"))
        assert set(data) == {"roleinterrupt", "uncertain_interrupt"}
        assert data["uncertain_interrupt"] == "false"
        fields = {"role_id", "role_name", "interrupt"}
        assert all(set(item) == fields for item in data["roleinterrupt"])
        assert settings_of(api) == {"default": "true", "妈妈": "true"}

    def test_put_then_get(self, api):
        mom, dad = create_role(api, "妈妈"), create_role(api, "爸爸")
        body = {
            "roleinterrupt": [
                {"role_id": mom, "role_name": "ignored", "interrupt": "true"},
                {"role_id": dad, "role_name": "妈妈", "interrupt": "false"},
            ]
        }
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
        body = {
            "roleinterrupt": [
                {"role_id": dad, "interrupt": "false"},
                {"role_id": "nope", "interrupt": "false"},
            ]
        }
        envelope(api.put(VP + f"roleinterrupt/{AGENT}", body, format="json"), 40400)
        assert settings_of(api)["爸爸"] == "true"

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"uncertain_interrupt": None},
            {"roleinterrupt": "yes"},
            {"roleinterrupt": [{"interrupt": "true"}]},
            {"roleinterrupt": [{"role_id": "x", "interrupt": "maybe"}]},
            {"roleinterrupt": [{"role_id": "x"}]},
        ],
    )
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


@pytest.mark.django_db
class TestUncertainInterrupt:
    """`uncertain_interrupt`: may a speaker identify is uncertain about interrupt the agent."""

    @pytest.mark.parametrize(
        "value,expected",
        [
            ("true", "true"),
            (True, "true"),
            (" TRUE ", "true"),
            (False, "false"),
        ],
    )
    def test_put_alone_then_get(self, api, value, expected):
        dad = create_role(api, "爸爸")
        put(api, {"roleinterrupt": [{"role_id": dad, "interrupt": "false"}]})
        assert put(api, {"uncertain_interrupt": value}) is None
        assert uncertain_of(api) == expected
        # The roles are left as they were, and other agents keep the default.
        assert settings_of(api) == {"default": "true", "爸爸": "false"}
        assert uncertain_of(api, "agent_002") == "false"

    def test_put_with_roles_sets_both_and_leaving_it_out_keeps_it(self, api):
        dad = create_role(api, "爸爸")
        put(
            api,
            {
                "roleinterrupt": [{"role_id": dad, "interrupt": "false"}],
                "uncertain_interrupt": "true",
            },
        )
        assert (settings_of(api)["爸爸"], uncertain_of(api)) == ("false", "true")
        put(api, {"roleinterrupt": [{"role_id": dad, "interrupt": "true"}]})
        assert (settings_of(api)["爸爸"], uncertain_of(api)) == ("true", "true")
        put(api, {"roleinterrupt": [], "uncertain_interrupt": "false"})
        assert (settings_of(api)["爸爸"], uncertain_of(api)) == ("true", "false")

    @pytest.mark.parametrize("value", ["maybe", "", 1, None, ["true"], {"value": True}])
    def test_invalid_value_is_40000_and_nothing_is_stored(self, api, value):
        dad = create_role(api, "爸爸")
        body = {
            "roleinterrupt": [{"role_id": dad, "interrupt": "false"}],
            "uncertain_interrupt": value,
        }
        reply = api.put(VP + f"roleinterrupt/{AGENT}", body, format="json")
        envelope(reply, 40000)
        assert reply.json()["msg"].startswith("uncertain_interrupt: ")
        assert settings_of(api)["爸爸"] == "true"
        assert uncertain_of(api) == "false"

    def test_unknown_role_refuses_the_uncertain_setting_too(self, api):
        body = {
            "roleinterrupt": [{"role_id": "nope", "interrupt": "false"}],
            "uncertain_interrupt": "true",
        }
        put(api, body, 40400)
        assert uncertain_of(api) == "false"

    def test_empty_body_names_the_missing_field(self, api):
        reply = api.put(VP + f"roleinterrupt/{AGENT}", {}, format="json")
        envelope(reply, 40000)
        assert reply.json()["msg"].startswith("roleinterrupt: ")

    def test_too_long_agent_id_is_40000_and_nothing_is_stored(self, api):
        from interrupts.models import AgentPolicy

        put(api, {"uncertain_interrupt": "true"}, 40000, agent="a" * 129)
        assert not AgentPolicy.objects.exists()

    def test_each_tenant_has_its_own_setting_for_the_same_agent(self, api, other_api):
        put(api, {"uncertain_interrupt": "true"})
        assert uncertain_of(other_api) == "false"
        put(other_api, {"uncertain_interrupt": "true"})
        put(other_api, {"uncertain_interrupt": "false"})
        assert uncertain_of(other_api) == "false"
        assert uncertain_of(api) == "true"
