"""The identify page's live microphone: its panel, and the stream tickets the console gives
it (login, CSRF, the tenant of the device asked for, and what the stream reads from one)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from core.exceptions import ApiError, ErrorCode
from tests.console.conftest import make_operator
from voiceprint.streaming.tickets import TICKET_MAX_AGE, stream_ticket_read

pytestmark = pytest.mark.django_db

TICKET_URL = "/admin/identify/stream-ticket/"


def test_the_ticket_url():
    assert reverse("admin:identify_stream_ticket") == TICKET_URL


def test_a_ticket_names_the_devices_tenant_and_the_console_user(superuser_client, acme, globex):
    for world in (acme, globex):  # a superuser may stream for any tenant's device
        response = superuser_client.post(TICKET_URL, {"device": world.device.pk})
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        body = response.json()
        assert body["device_id"] == world.device.device_id
        assert body["expires_in"] == TICKET_MAX_AGE
        ticket = stream_ticket_read(body["ticket"])
        assert (ticket.tenant_id, ticket.actor) == (world.tenant.pk, "console:root")
        assert ticket.device_id == world.device.device_id  # that device only


def test_an_operator_gets_tickets_for_their_own_tenant_only(operator_client, acme, globex):
    response = operator_client.post(TICKET_URL, {"device": acme.device.pk})
    assert response.status_code == 200
    ticket = stream_ticket_read(response.json()["ticket"])
    assert (ticket.tenant_id, ticket.actor) == (acme.tenant.pk, "console:acme-operator")
    # Another tenant's device answers as one that does not exist: no ticket at all.
    response = operator_client.post(TICKET_URL, {"device": globex.device.pk})
    assert response.status_code == 404
    assert "ticket" not in response.json()


def test_a_staff_user_without_a_tenant_gets_no_ticket(acme, django_user_model):
    client = Client()
    client.force_login(make_operator(django_user_model, "nobody"))
    assert client.post(TICKET_URL, {"device": acme.device.pk}).status_code == 404


def test_a_staff_user_without_the_device_permission_is_refused(acme, django_user_model):
    user = django_user_model.objects.create_user("plain", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.post(TICKET_URL, {"device": acme.device.pk}).status_code == 403


@pytest.mark.parametrize("device", ["", "x", "999999"])
def test_an_unknown_device_gets_no_ticket(superuser_client, acme, device):
    assert superuser_client.post(TICKET_URL, {"device": device}).status_code == 404


def test_login_is_required(client, acme):
    response = client.post(TICKET_URL, {"device": acme.device.pk})
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert "ticket" not in response.content.decode()


def test_only_post(superuser_client, acme):
    assert superuser_client.get(TICKET_URL, {"device": acme.device.pk}).status_code == 405


def test_csrf_is_checked(django_user_model, acme):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(TICKET_URL, {"device": acme.device.pk}).status_code == 403
    # With the page's token, as live.js sends it: its form's field, in the X-CSRFToken header.
    page = client.get(reverse("admin:identify")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(TICKET_URL, {"device": acme.device.pk}, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert stream_ticket_read(response.json()["ticket"]).tenant_id == acme.tenant.pk


def test_a_ticket_rewritten_for_another_tenant_is_refused(superuser_client, acme, globex):
    ticket = superuser_client.post(TICKET_URL, {"device": acme.device.pk}).json()["ticket"]
    payload, signature = ticket.split(":", 1)
    content = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert content["tenant"] == acme.tenant.pk
    content["tenant"] = globex.tenant.pk
    forged = base64.urlsafe_b64encode(json.dumps(content).encode()).decode().rstrip("=")
    with pytest.raises(ApiError) as refused:
        stream_ticket_read(f"{forged}:{signature}")
    assert refused.value.code == ErrorCode.UNAUTHORIZED


def test_the_panel_offers_the_operators_devices(operator_client, acme, globex):
    response = operator_client.get(reverse("admin:identify"), {"device": acme.device.pk})
    content = response.content.decode()
    assert 'id="live"' in content
    assert f'data-ticket-url="{TICKET_URL}"' in content
    assert 'data-stream-path="/v1/voiceprint/stream"' in content
    assert response.context["live_devices"] == [
        (acme.device.pk, f"acme · {acme.device.device_name} ({acme.device.device_id})")
    ]
    assert f'<option value="{acme.device.pk}" selected>' in content
    assert globex.device.device_id not in content
    assert "console/live.js" in content and "console/pcm-worklet.js" in content
