"""The console as a superuser sees it: every page renders, tokens, roles, voices, agents."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.contrib import admin
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_client, stored_files
from tests.console.conftest import tone_wav
from tests.console.test_operator_isolation import admin_url, sample_formset
from tests.helpers import VP, envelope
from voiceprint.embedding_files import EmbeddingRow
from voiceprint.models import Voice, VoiceSample
from voiceprint.services import audio_retention_cutoff, voice_audio_purge, voices_import

pytestmark = pytest.mark.django_db


def test_every_page_renders(superuser_client, acme, globex):
    """No broken pages: each registered model's list, search, add and change pages."""
    from django.contrib.auth import get_user_model

    from audit.models import AuditEvent
    from tests.console.test_console_operating_points import stored_point

    objects = {
        "tenant": acme.tenant,
        "apitoken": acme.tenant.tokens.get(),
        "role": acme.role,
        "device": acme.device,
        "voice": acme.voice,
        "roleinterrupt": acme.setting,
        "operatingpoint": stored_point(acme.tenant),
        "user": get_user_model().objects.get(username="root"),
        "group": None,
        "auditevent": AuditEvent.objects.filter(tenant=acme.tenant).first(),
    }
    for model in admin.site._registry:
        name = f"{model._meta.app_label}_{model._meta.model_name}"
        assert superuser_client.get(admin_url(name)).status_code == 200, name
        assert superuser_client.get(admin_url(name) + "?q=acme").status_code == 200, name
        add = superuser_client.get(admin_url(name, "add"))
        read_only = model._meta.model_name in ("apitoken", "auditevent")
        assert add.status_code == (403 if read_only else 200), name
        obj = objects[model._meta.model_name]
        if obj is not None:
            change = superuser_client.get(admin_url(name, "change", obj.pk))
            assert change.status_code == 200, name
    for url in (
        reverse("admin:index"),
        reverse("admin:identify"),
        reverse("admin:identify") + f"?device={acme.device.pk}",
        reverse("admin:interrupts_roleinterrupt_agent"),
        reverse("admin:interrupts_roleinterrupt_agent") + f"?tenant={acme.tenant.pk}&agent_id=a1",
        admin_url("voiceprint_voice", "add_sample", acme.voice.pk),
        admin_url("devices_device") + f"?tenant__id__exact={acme.tenant.pk}&o=7",
        admin_url("voiceprint_voice") + f"?devices__id__exact={acme.device.pk}&engine_name=ge2e",
    ):
        assert superuser_client.get(url).status_code == 200, url


def test_dashboard(superuser_client, acme, globex):
    response = superuser_client.get(reverse("admin:index"))
    content = response.content.decode()
    assert "Voiceprint console" in content
    assert reverse("admin:identify") in content
    assert response.context["stats"] == {
        "tenants": 2,
        "devices": 2,
        "voices": 2,
        "identify": 0,
        "matched": 0,
    }


class TestTokens:
    def test_created_token_is_shown_once_and_works(self, superuser_client, acme):
        from tenancy.models import ApiToken

        url = admin_url("tenancy_tenant", "create_token", acme.tenant.pk)
        response = superuser_client.post(url, {"label": "ci"})
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        token = ApiToken.objects.get(tenant=acme.tenant, label="ci")
        ((_, issued),) = response.context["issued"]
        assert issued.plaintext in response.content.decode()
        envelope(make_client(issued.plaintext).get(VP + "roles"))

        page = superuser_client.get(admin_url("tenancy_tenant", "change", acme.tenant.pk))
        content = page.content.decode()
        assert f"vp_{token.prefix}_" in content
        assert issued.plaintext not in content
        assert token.digest not in content
        listing = superuser_client.get(admin_url("tenancy_apitoken")).content.decode()
        assert issued.plaintext not in listing and token.digest not in listing
        detail = superuser_client.get(admin_url("tenancy_apitoken", "change", token.pk))
        assert token.digest not in detail.content.decode()

    def test_the_form_offers_the_scopes_and_the_tenants_devices(
        self, superuser_client, acme, globex
    ):
        page = superuser_client.get(admin_url("tenancy_tenant", "change", acme.tenant.pk))
        content = page.content.decode()
        for scope in ("admin", "read", "device"):
            assert f'<option value="{scope}">' in content
        assert f'<option value="{acme.device.device_id}">' in content
        assert globex.device.device_id not in content

    def test_created_device_token_reaches_its_device_only(self, superuser_client, acme):
        from tenancy.models import ApiToken

        url = admin_url("tenancy_tenant", "create_token", acme.tenant.pk)
        device_id = acme.device.device_id
        response = superuser_client.post(
            url, {"label": "firmware", "scope": "device", "device": device_id}
        )
        assert response.status_code == 200
        ((_, issued),) = response.context["issued"]
        token = ApiToken.objects.get(tenant=acme.tenant, label="firmware")
        assert (token.scope, token.device_id) == ("device", device_id)
        assert device_id in response.content.decode()
        client = make_client(issued.plaintext)
        envelope(client.get(VP + f"devices/{device_id}"))
        envelope(client.get(VP + "roles"), 40300)
        listing = superuser_client.get(admin_url("tenancy_apitoken")).content.decode()
        assert device_id in listing and issued.plaintext not in listing

    @pytest.mark.parametrize(
        "form",
        [
            {"scope": "device"},
            {"scope": "device", "device": "globex-speaker"},
            {"scope": "root"},
        ],
        ids=["no device", "another tenant's device", "unknown scope"],
    )
    def test_refused_token_forms_create_nothing(self, superuser_client, acme, globex, form):
        from tenancy.models import ApiToken

        count = ApiToken.objects.count()
        url = admin_url("tenancy_tenant", "create_token", acme.tenant.pk)
        response = superuser_client.post(url, form, follow=True)
        assert response.status_code == 200
        assert "No token created" in response.content.decode()
        assert ApiToken.objects.count() == count

    def test_create_token_needs_post(self, superuser_client, acme):
        url = admin_url("tenancy_tenant", "create_token", acme.tenant.pk)
        assert superuser_client.get(url).status_code == 405

    def test_action_creates_tokens_for_selected_tenants(self, superuser_client, acme, globex):
        response = superuser_client.post(
            admin_url("tenancy_tenant"),
            {"action": "create_tokens", "_selected_action": [acme.tenant.pk, globex.tenant.pk]},
        )
        assert response.status_code == 200
        assert len(response.context["issued"]) == 2
        assert acme.tenant.tokens.count() == 2

    def test_revoke_action(self, superuser_client, acme):
        token = acme.tenant.tokens.get()
        response = superuser_client.post(
            admin_url("tenancy_apitoken"),
            {"action": "revoke_tokens", "_selected_action": [token.pk]},
        )
        assert response.status_code == 302
        token.refresh_from_db()
        assert not token.is_active
        envelope(make_client(acme.token).get(VP + "roles"), 40100)

    def test_tokens_are_not_editable(self, superuser_client, acme):
        token = acme.tenant.tokens.get()
        url = admin_url("tenancy_apitoken", "change", token.pk)
        response = superuser_client.post(url, {"label": "changed", "digest": "0" * 64})
        assert response.status_code == 403
        token.refresh_from_db()
        assert token.label == "" and token.digest != "0" * 64

    def test_new_tenant_gets_a_default_role_and_a_token(self, superuser_client):
        from tenancy.models import Tenant

        response = superuser_client.post(
            admin_url("tenancy_tenant", "add"), {"name": "initech", "is_active": "on"}
        )
        assert response.status_code == 200
        tenant = Tenant.objects.get(name="initech")
        ((_, issued),) = response.context["issued"]
        roles = envelope(make_client(issued.plaintext).get(VP + "roles"))
        assert [role["role_name"] for role in roles] == ["default"]
        assert tenant.tokens.count() == 1


class TestRoles:
    def test_default_role_cannot_be_deleted(self, superuser_client, acme):
        from roles.models import Role

        default = Role.objects.get(tenant=acme.tenant, is_default=True)
        url = admin_url("roles_role", "delete", default.pk)
        assert superuser_client.post(url, {"post": "yes"}).status_code == 403
        # A selection with the default role is refused as a whole ...
        both = {"action": "delete_selected", "_selected_action": [default.pk, acme.role.pk]}
        response = superuser_client.post(admin_url("roles_role"), both)
        assert "Cannot delete roles" in response.content.decode()
        response = superuser_client.post(admin_url("roles_role"), {**both, "post": "yes"})
        assert response.status_code == 403
        assert Role.objects.filter(pk__in=[default.pk, acme.role.pk]).count() == 2
        # ... one without it goes through roles.services.
        only = {"action": "delete_selected", "_selected_action": [acme.role.pk], "post": "yes"}
        assert superuser_client.post(admin_url("roles_role"), only).status_code == 302
        assert Role.objects.filter(pk=default.pk).exists()
        assert not Role.objects.filter(pk=acme.role.pk).exists()
        acme.voice.refresh_from_db()
        assert acme.voice.role is None  # the voice stays, unbound


class TestVoices:
    def post_voice(self, client, voice, **changes):
        data = {
            "name": voice.name,
            "threshold": voice.threshold,
            "role": voice.role_id or "",
            "bound_devices": [d.pk for d in voice.devices.all()],
            "labels": "{}",
            **sample_formset(voice),
            **changes,
        }
        return client.post(admin_url("voiceprint_voice", "change", voice.pk), data)

    def test_bindings_are_edited_through_the_service(self, superuser_client, acme):
        from devices.services import device_create
        from roles.models import Role

        second = device_create(acme.tenant, device_id="second")
        default = Role.objects.get(tenant=acme.tenant, is_default=True)
        response = self.post_voice(
            superuser_client,
            acme.voice,
            threshold="0.55",
            role=default.pk,
            bound_devices=[second.pk],
        )
        assert response.status_code == 302, response.context["adminform"].form.errors
        voice = acme.voice
        voice.refresh_from_db()
        assert voice.threshold == 0.55
        assert voice.role == default
        assert list(voice.devices.all()) == [second]
        api = make_client(acme.token)
        assert envelope(api.get(VP + f"voices/{voice.voice_id}"))["dev_bind"] == [
            {"device_id": "second", "device_name": "second"}
        ]

    def test_full_device_is_a_form_error(self, superuser_client, acme, settings):
        from tests.console.conftest import make_voice

        settings.VOICEPRINT_MAX_VOICES_PER_DEVICE = 1
        other, _ = make_voice(acme.tenant, name="other")
        response = self.post_voice(superuser_client, other, bound_devices=[acme.device.pk])
        assert response.status_code == 200
        assert "bound_devices" in response.context["adminform"].form.errors
        assert other.devices.count() == 0

    def test_threshold_is_a_similarity(self, superuser_client, acme):
        response = self.post_voice(superuser_client, acme.voice, threshold="1.5")
        assert "threshold" in response.context["adminform"].form.errors

    def test_delete_removes_the_audio(
        self, superuser_client, acme, globex, media_root, django_capture_on_commit_callbacks
    ):
        acme_audio = acme.sample.audio.name
        assert acme_audio in stored_files(media_root)
        with django_capture_on_commit_callbacks(execute=True):
            response = superuser_client.post(
                admin_url("voiceprint_voice", "delete", acme.voice.pk), {"post": "yes"}
            )
        assert response.status_code == 302
        assert acme_audio not in stored_files(media_root)
        with django_capture_on_commit_callbacks(execute=True):
            response = superuser_client.post(
                admin_url("voiceprint_voice"),
                {"action": "delete_selected", "_selected_action": [globex.voice.pk], "post": "yes"},
            )
        assert response.status_code == 302
        assert stored_files(media_root) == set()

    def test_sample_audio(self, superuser_client, acme):
        response = superuser_client.get(admin_url("voiceprint_voice", "change", acme.voice.pk))
        url = admin_url("voiceprint_voice", "sample_audio", acme.sample.pk)
        assert f'<audio controls preload="metadata" class="console-audio" src="{url}"' in (
            response.content.decode()
        )
        audio = superuser_client.get(url)
        assert audio["Content-Type"] == "audio/wav"
        # Decrypted on the way out: the WAV that was stored, not the bytes in storage.
        assert b"".join(audio.streaming_content) == tone_wav()
        assert acme.sample.audio.open("rb").read() != tone_wav()

    def test_legacy_plaintext_audio_still_plays(self, superuser_client, acme):
        name = default_storage.save("voices/legacy.wav", ContentFile(tone_wav(0.5)))
        VoiceSample.objects.filter(pk=acme.sample.pk).update(audio=name)
        audio = superuser_client.get(admin_url("voiceprint_voice", "sample_audio", acme.sample.pk))
        assert b"".join(audio.streaming_content) == tone_wav(0.5)

    def test_tampered_audio_is_refused_in_words(self, superuser_client, acme, media_root):
        stored = media_root / acme.sample.audio.name
        blob = bytearray(stored.read_bytes())
        blob[-1] ^= 1
        stored.write_bytes(bytes(blob))
        audio = superuser_client.get(admin_url("voiceprint_voice", "sample_audio", acme.sample.pk))
        assert audio.status_code == 500
        assert audio["Content-Type"] == "text/plain"
        assert "failed authentication" in audio.content.decode()
        assert "Traceback" not in audio.content.decode()

    def test_sample_audio_is_staff_only(self, client, acme):
        url = admin_url("voiceprint_voice", "sample_audio", acme.sample.pk)
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
        api = make_client(acme.token)  # a tenant token is no way in either
        assert api.get(url).status_code == 302

    def test_purged_audio_shows_purged(
        self, superuser_client, acme, settings, media_root, django_capture_on_commit_callbacks
    ):
        settings.VOICEPRINT_AUDIO_RETENTION_DAYS = 30
        old = timezone.now() - timedelta(days=31)
        VoiceSample.objects.filter(pk=acme.sample.pk).update(created_at=old)
        with django_capture_on_commit_callbacks(execute=True):
            assert voice_audio_purge(voice_id=acme.voice.pk, cutoff=audio_retention_cutoff()) == 1
        page = superuser_client.get(admin_url("voiceprint_voice", "change", acme.voice.pk))
        url = admin_url("voiceprint_voice", "sample_audio", acme.sample.pk)
        assert ">purged " in page.content.decode() and url not in page.content.decode()
        audio = superuser_client.get(url)
        assert audio.status_code == 404
        assert "purged after 30 days" in audio.content.decode()

    def test_imported_voice_shows_no_audio(self, superuser_client, acme):
        row = EmbeddingRow(line=1, name="imported", vector=np.ones(256, dtype=np.float32))
        voices_import(acme.tenant, rows=[row], engine_name="ge2e", store="default")
        voice = Voice.objects.get(name="imported")
        page = superuser_client.get(admin_url("voiceprint_voice", "change", voice.pk))
        assert ">no audio<" in page.content.decode()
        url = admin_url("voiceprint_voice", "sample_audio", voice.samples.get().pk)
        audio = superuser_client.get(url)
        assert audio.status_code == 404
        assert "imported as an embedding" in audio.content.decode()

    def test_missing_audio_file_is_404(self, superuser_client, acme):
        acme.sample.audio.storage.delete(acme.sample.audio.name)
        url = admin_url("voiceprint_voice", "sample_audio", acme.sample.pk)
        assert superuser_client.get(url).status_code == 404


class TestAgents:
    def test_page_lists_every_role_and_saves(self, superuser_client, acme):
        from interrupts.selectors import agent_uncertain_interrupt_get, role_interrupt_list
        from roles.models import Role

        url = reverse("admin:interrupts_roleinterrupt_agent")
        response = superuser_client.get(url, {"tenant": acme.tenant.pk, "agent_id": "robot"})
        roles = response.context["roles"]
        assert {r.role_name for r in roles} == {"default", "acme-parent"}
        assert all(r.interrupt for r in roles)  # the default
        assert response.context["uncertain_interrupt"] is False  # the default
        assert 'id="id_uncertain_interrupt" checked' not in response.content.decode()
        default = Role.objects.get(tenant=acme.tenant, is_default=True)
        response = superuser_client.post(
            url,
            {
                "tenant": acme.tenant.pk,
                "agent_id": "robot",
                "interrupt": [default.role_id],
                "uncertain_interrupt": "true",
            },
        )
        assert response.status_code == 302
        stored = role_interrupt_list(acme.tenant, agent_id="robot")
        saved = {s.role_name: s.interrupt for s in stored}
        assert saved == {"default": True, "acme-parent": False}
        assert agent_uncertain_interrupt_get(acme.tenant, agent_id="robot") is True
        api = make_client(acme.token)
        reply = envelope(api.get(VP + "roleinterrupt/robot"))
        assert {r["role_name"]: r["interrupt"] for r in reply["roleinterrupt"]} == {
            "default": "true",
            "acme-parent": "false",
        }
        assert reply["uncertain_interrupt"] == "true"
        page = superuser_client.get(response["Location"]).content.decode()
        assert 'id="id_uncertain_interrupt" checked' in page

        # An unticked box is a "false", like the roles'.
        superuser_client.post(url, {"tenant": acme.tenant.pk, "agent_id": "robot"})
        assert agent_uncertain_interrupt_get(acme.tenant, agent_id="robot") is False
        assert not any(s.interrupt for s in role_interrupt_list(acme.tenant, agent_id="robot"))

    def test_an_agent_with_only_its_own_setting_is_listed(self, superuser_client, acme):
        from interrupts.services import agent_uncertain_interrupt_update

        agent_uncertain_interrupt_update(acme.tenant, agent_id="lonely", uncertain_interrupt=True)
        response = superuser_client.get(reverse("admin:interrupts_roleinterrupt_agent"))
        listed = [agent["agent_id"] for agent in response.context["known_agents"]]
        assert listed == ["acme-agent", "lonely"]

    def test_role_of_another_tenant_is_refused_in_rows(self, superuser_client, acme, globex):
        response = superuser_client.post(
            admin_url("interrupts_roleinterrupt", "add"),
            {"tenant": acme.tenant.pk, "agent_id": "x", "role": globex.role.pk},
        )
        assert response.status_code == 200
        assert "role" in response.context["adminform"].form.errors
