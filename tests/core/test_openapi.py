"""/api/schema/: valid OpenAPI 3, every /v1/ route with its methods, examples everywhere."""

from __future__ import annotations

import re

import openapi_spec_validator
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from core.exceptions import ErrorCode
from core.schema import BUSINESS_CODES

AUDIO_OPERATIONS = {
    "voices_create": {
        "X-Device-ID",
        "X-Role-ID",
        "X-Threshold",
        "X-Voice-Name",
        "X-Audio-URL",
        "X-Force",
        "X-Consent-Subject",
        "X-Consent-Text-Version",
        "X-Consent-Channel",
        "X-Consent-Time",
    },
    "voices_identify": {"X-Device-ID", "X-Agent-ID", "X-Top-K", "X-Audio-URL"},
    "voices_samples_add": {"X-Audio-URL", "X-Force"},
    "voices_verify": {"X-Audio-URL"},
    "features_extract": {"X-Audio-URL"},
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
RAW_AUDIO_TYPES = ("audio/wav", "audio/x-wav", "application/octet-stream")
#: What every Voice API operation can answer, and what one that reads audio adds.
VOICE_API_COMMON = {"400", "401", "403", "413", "429", "500"}
VOICE_API_AUDIO = {"415", "422", "502", "503"}


@pytest.fixture(scope="module")
def schema() -> dict:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def by_id(schema: dict) -> dict[str, dict]:
    return {op["operationId"]: op for _, _, op in operations(schema)}


def api_routes() -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every URL pattern under /v1/, from the URL conf itself."""
    found = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("v1/"):
                view = pattern.callback.view_class
                path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
                for method in HTTP_METHODS:
                    if method in view.http_method_names and hasattr(view, method):
                        found.add((path, method))

    walk(get_resolver().url_patterns, "")
    return found


def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(target))
    assert target.read_text().startswith("openapi: 3")


def test_component_names_follow_the_serializer_naming_convention():
    from rest_framework import serializers

    from core.schema import component_name

    class DeviceOutputSerializer(serializers.Serializer):
        pass

    class DeviceCreateInputSerializer(serializers.Serializer):
        pass

    class RoleCreateView:
        class InputSerializer(serializers.Serializer):
            pass

        class OutputSerializer(serializers.Serializer):
            pass

    assert component_name(DeviceOutputSerializer) == "Device"
    assert component_name(DeviceCreateInputSerializer) == "DeviceCreate"
    assert component_name(RoleCreateView.InputSerializer) == "RoleCreate"
    assert component_name(RoleCreateView.OutputSerializer) == "RoleCreate"


def test_schema_is_valid_for_openapi_spec_validator(schema):
    openapi_spec_validator.validate(schema)


def test_every_v1_route_and_method_is_documented(schema):
    routes = api_routes()
    assert len(routes) >= 25
    documented = {(path, method) for path, method, _ in operations(schema)}
    assert routes - documented == set()
    assert {p for p, _ in documented if p.startswith("/v1/")} == {p for p, _ in routes}


def test_every_operation_has_examples_security_and_a_tag(schema):
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        assert operation["security"] == [{"bearerAuth": []}], where
        assert operation.get("tags"), where
        body = operation.get("requestBody", {}).get("content", {})
        if body:
            assert body["application/json"].get("examples"), f"{where}: no request example"
        replies = [
            content
            for response in operation["responses"].values()
            for content in response.get("content", {}).values()
        ]
        assert any(reply.get("examples") for reply in replies), f"{where}: no reply example"


def test_bearer_auth_is_the_security_scheme(schema):
    scheme = schema["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"


@pytest.mark.parametrize("operation_id", sorted(AUDIO_OPERATIONS))
def test_audio_endpoints_document_all_three_forms(schema, operation_id):
    operation = by_id(schema)[operation_id]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data", *RAW_AUDIO_TYPES}
    for raw in RAW_AUDIO_TYPES:
        assert content[raw]["schema"] == {"type": "string", "format": "binary"}
    assert content["audio/wav"]["examples"]

    json_examples = [e["value"] for e in content["application/json"]["examples"].values()]
    assert any("audio_url" in value for value in json_examples)
    assert any("audio_base64" in value for value in json_examples)
    multipart = [e["value"] for e in content["multipart/form-data"]["examples"].values()]
    assert all("file" in value for value in multipart)
    form = schema["components"]["schemas"][
        content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    ]
    assert form["properties"]["file"]["format"] == "binary"

    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == AUDIO_OPERATIONS[operation_id]

    replies = operation["responses"]["200"]["content"]["application/json"]["examples"].values()
    codes = {reply["value"]["code"] for reply in replies}
    assert 0 in codes
    assert {40001, 40002, 40003, 40100} <= codes
    for reply in replies:
        value = reply["value"]
        assert set(value) == {"code", "msg", "data"}
        if value["code"]:
            assert value["msg"] and value["data"] is None
        else:
            assert value["msg"] == ""


def component(schema: dict, ref_holder: dict) -> dict:
    return schema["components"]["schemas"][ref_holder["$ref"].rsplit("/", 1)[1]]


def test_every_voiceprint_envelope_allows_the_null_data_of_failures(schema):
    """Failures are HTTP 200 with `data` null, on every operation (issue 9)."""
    checked = 0
    for path, method, operation in operations(schema):
        if not path.startswith("/v1/voiceprint/"):
            continue
        assert set(operation["responses"]) == {"200"}, f"{method} {path}"
        reply = component(schema, operation["responses"]["200"]["content"]["application/json"]
                          ["schema"])  # fmt: skip
        assert set(reply["required"]) == {"code", "msg", "data"}, f"{method} {path}"
        assert reply["properties"]["data"]["nullable"] is True, f"{method} {path}"
        checked += 1
    assert checked >= 20


def test_voice_api_audio_fields_are_required(schema):
    required = {
        "voice_verify": {"audio1", "audio2"},
        "voice_register": {"audio", "name"},
        "voice_identify": {"audio"},
        "voice_embed": {"audio"},
        "voice_analyze": {"audio"},
    }
    for operation_id, fields in required.items():
        body = by_id(schema)[operation_id]["requestBody"]["content"]["application/json"]
        request = component(schema, body["schema"])
        assert set(request["required"]) == fields, operation_id
        for field in fields - {"name"}:
            assert "nullable" not in request["properties"][field], (operation_id, field)
            assert request["properties"][field]["minLength"] == 1, (operation_id, field)


@pytest.mark.parametrize(
    ("operation_id", "statuses"),
    [
        ("voice_verify", {"200"} | VOICE_API_COMMON | VOICE_API_AUDIO),
        ("voice_register", {"200"} | VOICE_API_COMMON | VOICE_API_AUDIO),
        ("voice_identify", {"200"} | VOICE_API_COMMON | VOICE_API_AUDIO),
        ("voice_embed", {"200"} | VOICE_API_COMMON | VOICE_API_AUDIO),
        ("voice_analyze", {"200", "501"} | VOICE_API_COMMON | VOICE_API_AUDIO),
        ("voice_forget", {"204", "404"} | VOICE_API_COMMON),
    ],
)
def test_voice_api_documents_every_status_it_answers(schema, operation_id, statuses):
    responses = by_id(schema)[operation_id]["responses"]
    assert set(responses) == statuses
    for status in statuses - {"200", "204"}:
        content = responses[status]["content"]["application/json"]
        assert content["schema"]["$ref"].endswith("/VoiceError"), status
        codes = {code for code in ErrorCode if code.http_status == int(status)}
        assert all(str(int(code)) in responses[status]["description"] for code in codes)


def test_voiceprint_error_examples_are_envelopes(schema):
    example = by_id(schema)["voices_get"]["responses"]["200"]["content"]["application/json"]
    assert example["examples"]["VoiceNotFound"]["value"] == {
        "code": 40400,
        "msg": "voice not found",
        "data": None,
    }


def test_voice_api_errors_use_the_error_shape_and_their_status(schema):
    for operation_id in ("voice_verify", "voice_identify", "voice_forget", "voice_analyze"):
        responses = by_id(schema)[operation_id]["responses"]
        error_examples = 0
        for status, response in responses.items():
            for content in response.get("content", {}).values():
                for example in content.get("examples", {}).values():
                    if status.startswith(("4", "5")):
                        code = example["value"]["error"]["code"]
                        assert ErrorCode(code).http_status == int(status)
                        error_examples += 1
        assert error_examples >= 2, operation_id


def test_description_lists_every_business_code(schema):
    assert set(BUSINESS_CODES) == set(ErrorCode)
    description = schema["info"]["description"]
    for code in ErrorCode:
        assert f"| {int(code)} | {code.http_status} |" in description
    assert "/metrics" in description and "X-Request-ID" in description
