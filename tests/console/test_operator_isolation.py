"""An operator (staff user with an OperatorProfile) sees and edits only their tenant."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.console.conftest import make_operator, tone_wav

pytestmark = pytest.mark.django_db


def admin_url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:{model}_{view}", args=args)


CHANGELISTS = {
    "tenancy_tenant": ("tenant", lambda w: w.tenant.name),
    "tenancy_apitoken": ("tenant", lambda w: w.tenant.tokens.get().prefix),
    "roles_role": ("role", lambda w: w.role.name),
    "devices_device": ("device", lambda w: w.device.device_id),
    "voiceprint_voice": ("voice", lambda w: w.voice.name),
    "interrupts_roleinterrupt": ("setting", lambda w: w.setting.agent_id),
}


@pytest.mark.parametrize("model", CHANGELISTS)
def test_lists_show_only_the_operators_tenant(operator_client, acme, globex, model):
    _, text_of = CHANGELISTS[model]
    response = operator_client.get(admin_url(model))
    assert response.status_code == 200
    content = response.content.decode()
    assert text_of(acme) in content
    assert text_of(globex) not in content
    assert "globex" not in content


@pytest.mark.parametrize("model", CHANGELISTS)
def test_another_tenants_record_is_not_found(operator_client, acme, globex, model):
    attribute, _ = CHANGELISTS[model]
    record = getattr(globex, attribute)
    if model == "tenancy_apitoken":
        record = globex.tenant.tokens.get()
    response = operator_client.get(admin_url(model, "change", record.pk))
    # The admin's answer for an id that does not exist: back to the index with a message.
    assert response.status_code == 302
    assert response.url == reverse("admin:index")
    own = getattr(acme, attribute) if model != "tenancy_apitoken" else acme.tenant.tokens.get()
    assert operator_client.get(admin_url(model, "change", own.pk)).status_code == 200


def test_another_tenants_record_cannot_be_deleted(operator_client, globex):
    url = admin_url("devices_device", "delete", globex.device.pk)
    operator_client.post(url, {"post": "yes"})
    globex.device.refresh_from_db()  # still there
    response = operator_client.post(
        admin_url("devices_device"),
        {"action": "delete_selected", "_selected_action": [globex.device.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    globex.device.refresh_from_db()


def test_new_records_get_the_operators_tenant(operator_client, acme, globex):
    from devices.models import Device

    response = operator_client.get(admin_url("devices_device", "add"))
    choices = response.context["adminform"].form.fields["tenant"].queryset
    assert list(choices) == [acme.tenant]
    # Another tenant's id is not a valid choice ...
    response = operator_client.post(
        admin_url("devices_device", "add"),
        {"tenant": globex.tenant.pk, "device_id": "aa:bb", "device_name": ""},
    )
    assert response.status_code == 200
    assert "tenant" in response.context["adminform"].form.errors
    assert not Device.objects.filter(device_id="aa:bb").exists()
    # ... their own is, and the device is theirs.
    response = operator_client.post(
        admin_url("devices_device", "add"),
        {"tenant": acme.tenant.pk, "device_id": "aa:bb", "device_name": ""},
    )
    assert response.status_code == 302
    device = Device.objects.get(device_id="aa:bb")
    assert device.tenant == acme.tenant
    assert device.device_name == "aa:bb"


def test_duplicate_device_id_is_a_form_error(operator_client, acme):
    response = operator_client.post(
        admin_url("devices_device", "add"),
        {"tenant": acme.tenant.pk, "device_id": acme.device.device_id, "device_name": ""},
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_voice_form_offers_only_the_tenants_roles_and_devices(operator_client, acme, globex):
    from roles.models import Role

    response = operator_client.get(admin_url("voiceprint_voice", "change", acme.voice.pk))
    form = response.context["adminform"].form
    roles = set(form.fields["role"].queryset)
    assert roles == set(Role.objects.filter(tenant=acme.tenant))
    assert acme.role in roles
    assert list(form.fields["bound_devices"].queryset) == [acme.device]
    response = operator_client.post(
        admin_url("voiceprint_voice", "change", acme.voice.pk),
        {
            "name": "renamed",
            "threshold": "0.5",
            "role": globex.role.pk,
            "bound_devices": [globex.device.pk],
            "labels": "{}",
            **sample_formset(acme.voice),
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert {"role", "bound_devices"} <= set(errors)
    acme.voice.refresh_from_db()
    assert acme.voice.name == "acme-voice"


def test_sample_audio_of_another_tenant_is_404(operator_client, acme, globex):
    own = operator_client.get(admin_url("voiceprint_voice", "sample_audio", acme.sample.pk))
    assert own.status_code == 200
    assert own["Content-Type"] == "audio/wav"
    assert b"".join(own.streaming_content)[:4] == b"RIFF"
    other = operator_client.get(admin_url("voiceprint_voice", "sample_audio", globex.sample.pk))
    assert other.status_code == 404


def test_identify_offers_only_the_tenants_devices(operator_client, acme, globex):
    response = operator_client.get(reverse("admin:identify"))
    assert list(response.context["form"].fields["device"].queryset) == [acme.device]
    audio = tone_wav()
    response = operator_client.post(
        reverse("admin:identify"),
        {"device": globex.device.pk, "audio": _upload(audio), "top_k": 3},
    )
    assert "device" in response.context["form"].errors
    globex.device.refresh_from_db()
    assert globex.device.identify_count == 0


def test_enroll_offers_only_the_tenant(operator_client, acme, globex):
    from voiceprint.models import Voice

    response = operator_client.get(admin_url("voiceprint_voice", "add"))
    form = response.context["form"]
    assert list(form.fields["tenant"].queryset) == [acme.tenant]
    assert form.fields["tenant"].initial == acme.tenant.pk
    response = operator_client.post(
        admin_url("voiceprint_voice", "add"),
        {"tenant": globex.tenant.pk, "audio": _upload(tone_wav()), "name": "intruder"},
    )
    assert "tenant" in response.context["form"].errors
    assert not Voice.objects.filter(name="intruder").exists()


def test_tokens_of_another_tenant_cannot_be_created(operator_client, acme, globex):
    url = admin_url("tenancy_tenant", "create_token", globex.tenant.pk)
    response = operator_client.post(url, {"label": "sneaky"})
    assert response.status_code == 302
    assert not globex.tenant.tokens.filter(label="sneaky").exists()
    response = operator_client.post(
        admin_url("tenancy_tenant", "create_token", acme.tenant.pk), {"label": "mine"}
    )
    assert response.status_code == 200
    assert acme.tenant.tokens.filter(label="mine").exists()


def test_another_tenants_tokens_cannot_be_revoked(operator_client, globex):
    token = globex.tenant.tokens.get()
    operator_client.post(
        admin_url("tenancy_apitoken"),
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.is_active


def test_agent_page_is_scoped(operator_client, acme, globex):
    from interrupts.models import AgentPolicy
    from interrupts.services import agent_uncertain_interrupt_update

    agent_uncertain_interrupt_update(globex.tenant, agent_id="globex-own", uncertain_interrupt=True)
    url = reverse("admin:interrupts_roleinterrupt_agent")
    response = operator_client.get(url)
    assert list(response.context["form"].fields["tenant"].queryset) == [acme.tenant]
    assert "globex-agent" not in response.content.decode()
    assert "globex-own" not in response.content.decode()
    response = operator_client.post(
        url,
        {
            "tenant": globex.tenant.pk,
            "agent_id": "globex-agent",
            "interrupt": [],
            "uncertain_interrupt": "true",
        },
    )
    assert response.status_code == 200  # the form, with an error; nothing saved
    assert "tenant" in response.context["form"].errors
    assert list(AgentPolicy.objects.values_list("agent_id", flat=True)) == ["globex-own"]
    globex.setting.refresh_from_db()
    assert globex.setting.interrupt is False


def test_dashboard_counts_only_the_tenant(operator_client):
    response = operator_client.get(reverse("admin:index"))
    assert response.context["stats"]["tenants"] == 1
    assert response.context["stats"]["devices"] == 1
    assert response.context["stats"]["voices"] == 1


def test_operators_cannot_manage_users_or_add_tenants(operator_client):
    assert operator_client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert operator_client.get(admin_url("tenancy_tenant", "add")).status_code == 403


def test_staff_without_profile_sees_no_tenant(acme, django_user_model, client):
    client.force_login(make_operator(django_user_model, "nobody"))
    for model in CHANGELISTS:
        response = client.get(admin_url(model))
        assert response.status_code == 200
        assert "acme" not in response.content.decode()
    response = client.get(admin_url("devices_device", "add"))
    assert list(response.context["adminform"].form.fields["tenant"].queryset) == []


def test_view_only_operator_sees_read_only_pages(acme, django_user_model, client):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__startswith="view_",
            content_type__app_label__in=["tenancy", "roles", "devices", "interrupts", "voiceprint"],
        )
    )
    from tenancy.models import OperatorProfile

    OperatorProfile.objects.create(user=user, tenant=acme.tenant)
    client.force_login(user)
    for model, attribute in [
        ("voiceprint_voice", "voice"),
        ("devices_device", "device"),
        ("roles_role", "role"),
        ("interrupts_roleinterrupt", "setting"),
        ("tenancy_tenant", "tenant"),
    ]:
        page = client.get(admin_url(model, "change", getattr(acme, attribute).pk))
        assert page.status_code == 200, model
        assert (
            client.post(admin_url(model, "change", getattr(acme, attribute).pk)).status_code == 403
        )
    content = client.get(admin_url("voiceprint_voice", "change", acme.voice.pk)).content.decode()
    assert acme.device.device_name in content  # the bound devices, read-only
    assert client.get(admin_url("voiceprint_voice", "add")).status_code == 403
    assert client.get(admin_url("voiceprint_voice", "add_sample", acme.voice.pk)).status_code == 403
    assert client.get(reverse("admin:identify")).status_code == 200
    url = admin_url("tenancy_tenant", "create_token", acme.tenant.pk)
    assert client.post(url).status_code == 403


def test_superuser_sees_every_tenant(superuser_client, acme, globex):
    content = superuser_client.get(admin_url("devices_device")).content.decode()
    assert acme.device.device_id in content
    assert globex.device.device_id in content


def sample_formset(voice) -> dict:
    """The management form and ids of a voice's (read-only) sample inline, as a browser
    posts them with the voice's change form."""
    samples = list(voice.samples.all())
    data = {"samples-TOTAL_FORMS": len(samples), "samples-INITIAL_FORMS": len(samples)}
    for i, sample in enumerate(samples):
        data[f"samples-{i}-id"] = sample.pk
        data[f"samples-{i}-voice"] = voice.pk
    return data


def _upload(data: bytes, name: str = "clip.wav"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="audio/wav")
