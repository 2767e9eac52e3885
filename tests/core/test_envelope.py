"""One envelope for every /v1/voiceprint/ reply, whatever goes wrong."""

import logging

import pytest

from tests.helpers import VP, envelope


@pytest.mark.django_db
class TestEnvelope:
    def test_success_has_code_zero_and_empty_msg(self, api):
        data = envelope(api.get(VP + "roles"))
        assert [role["role_name"] for role in data] == ["default"]

    def test_malformed_json_is_40000(self, api):
        response = api.post(VP + "roles", data='{"role_name": ', content_type="application/json")
        assert "malformed" in response.json()["msg"]
        envelope(response, 40000)

    def test_validation_error_names_the_field(self, api):
        response = api.post(VP + "roles", {"role_name": ""}, format="json")
        envelope(response, 40000)
        assert response.json()["msg"].startswith("role_name:")

    def test_wrong_method_is_an_envelope(self, api):
        envelope(api.patch(VP + "roles", {}, format="json"), 40000)

    @pytest.mark.parametrize("path", ["roles", "voices/create", "features/extract"])
    def test_options_is_an_envelope_not_a_view_description(self, api, path):
        response = api.options(VP + path)
        envelope(response, 40000)
        assert "OPTIONS" in response.json()["msg"]

    def test_options_on_the_voice_api_is_a_400_error(self, api):
        response = api.options("/v1/voice/verify")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == 40000

    def test_a_host_django_refuses_is_an_envelope(self, api):
        envelope(api.get(VP + "roles", HTTP_HOST="bad[host]"), 40000)

    def test_a_host_django_refuses_is_a_voice_api_error(self, api):
        response = api.post("/v1/voice/forget", {"id": "x"}, format="json", HTTP_HOST="bad[host]")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == 40000

    def test_unknown_endpoint_is_40400(self, api):
        envelope(api.get(VP + "no-such-thing"), 40400)

    def test_unknown_endpoint_without_token_is_still_an_envelope(self, client):
        envelope(client.get(VP + "no/such/thing"), 40400)

    def test_unhandled_exception_is_50000_without_trace(self, api, monkeypatch, caplog):
        import roles.api.views

        def explode(tenant):
            raise RuntimeError("secret internals")

        monkeypatch.setattr(roles.api.views.selectors, "role_list", explode)
        with caplog.at_level(logging.ERROR):
            response = api.get(VP + "roles")
        envelope(response, 50000)
        assert "secret internals" not in response.content.decode()
        assert any(
            record.exc_info and "secret internals" in str(record.exc_info[1])
            for record in caplog.records
        ), "the trace must be logged"

    def test_non_ascii_is_kept(self, api):
        envelope(api.post(VP + "roles", {"role_name": "妈妈"}, format="json"))
        names = [role["role_name"] for role in envelope(api.get(VP + "roles"))]
        assert "妈妈" in names


@pytest.mark.django_db
class TestErrorsOutsideTheViews:
    """Django refuses some requests before any view runs; the API's shape still holds."""

    def test_an_exception_in_a_middleware_is_an_envelope(self, api, settings):
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.core.test_envelope.Exploding"]
        api.raise_request_exception = False
        envelope(api.get(VP + "roles"), 50000)

    def test_pages_outside_the_api_keep_djangos_own(self, client):
        response = client.get("/admin/login/", HTTP_HOST="evil.example")
        assert response.status_code == 400
        assert not response.get("Content-Type", "").startswith("application/json")


class Exploding:
    """A middleware that fails before the view (and outside the envelope middleware's
    reach when placed after it, so that only handler500 can shape the reply)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise RuntimeError("a middleware broke")
