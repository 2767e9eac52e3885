"""Fixtures of the admin console tests (Django test client; no browser).

Two tenants, each with a device, a role, a voice with one stored sample and an agent
setting. Those voices are written directly (a random unit vector as their voiceprint), so
these tests need no speech engine; the tests that enroll real speech use `speech`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
from django.test import Client

from tests.conftest import SHARED_AUDIO

ZH = SHARED_AUDIO / "zh"


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def tone_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.3 * np.sin(2 * np.pi * 440 * t), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@dataclass
class World:
    """One tenant's records."""

    tenant: object
    token: str
    role: object
    device: object
    voice: object
    sample: object
    setting: object


def make_voice(tenant, *, name: str, devices=(), role=None):
    """A voice with one stored sample, without the engine."""
    from roles.selectors import role_get_default
    from voiceprint.models import Voice, VoiceBinding, VoiceSample
    from voiceprint.services import audio_store

    vector = np.random.default_rng(len(name)).standard_normal(256).astype(np.float32)
    vector /= np.linalg.norm(vector)
    with audio_store(tenant, wav=tone_wav()) as audio:  # encrypted, as the services store it
        voice = Voice.objects.create(
            tenant=tenant,
            name=name,
            threshold=0.7,
            role=role or role_get_default(tenant),
            engine_name="ge2e",
            dim=256,
            centroid=vector,
        )
        sample = VoiceSample.objects.create(
            voice=voice,
            audio=audio,
            engine_name="ge2e",
            embedding=vector,
            duration_seconds=1.0,
            speech_seconds=1.0,
        )
    VoiceBinding.objects.bulk_create(VoiceBinding(voice=voice, device=d) for d in devices)
    return voice, sample


def make_world(name: str) -> World:
    from devices.services import device_create
    from interrupts.models import RoleInterrupt
    from roles.services import role_create
    from tenancy.services import tenant_create

    tenant, issued = tenant_create(name=name)
    role = role_create(tenant, name=f"{name}-parent")
    device = device_create(
        tenant, device_id=f"{name}-speaker", device_name=f"{name} kitchen speaker"
    )
    voice, sample = make_voice(tenant, name=f"{name}-voice", devices=[device], role=role)
    setting = RoleInterrupt.objects.create(
        tenant=tenant, agent_id=f"{name}-agent", role=role, interrupt=False
    )
    return World(tenant, issued.plaintext, role, device, voice, sample, setting)


@pytest.fixture
def acme(db) -> World:
    return make_world("acme")


@pytest.fixture
def globex(db) -> World:
    return make_world("globex")


@pytest.fixture
def superuser_client(db, django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def make_operator(django_user_model, username: str, tenant=None):
    """A staff user in the "Tenant operators" group (made by `migrate`), limited to
    `tenant` when given."""
    from django.contrib.auth.models import Group

    from console.permissions import OPERATOR_GROUP
    from tenancy.models import OperatorProfile

    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATOR_GROUP))
    if tenant is not None:
        OperatorProfile.objects.create(user=user, tenant=tenant)
    return user


@pytest.fixture
def operator_client(acme, globex, django_user_model) -> Client:
    """An operator of tenant acme (globex exists too)."""
    client = Client()
    client.force_login(make_operator(django_user_model, "acme-operator", acme.tenant))
    return client


@pytest.fixture
def speech(shared_audio):
    """Paths of the real recordings: speech("enroll", "fangjun-sr-1.wav")."""

    def path(*parts: str) -> Path:
        return ZH.joinpath(*parts)

    return path
