"""Consent to enrollment (README, "Consent"): the record a voice may carry, and the
tenant setting that requires one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from core.exceptions import invalid
from tenancy.models import Tenant
from voiceprint.models import Voice, VoiceConsent


@dataclass(frozen=True)
class Consent:
    """Who consented (a name or an external id), to which version of the consent text,
    through which channel ("app", "voice", "web", "paper", ...), and when (default: now)."""

    subject: str
    text_version: str
    channel: str
    time: dt.datetime = field(default_factory=timezone.now)


def consent_check(tenant: Tenant, *, consent: Consent | None) -> None:
    """Refuse (40000) an enrollment without consent where the tenant requires it."""
    if consent is None and tenant.require_consent:
        raise invalid("consent", "required by this tenant")


def consent_create(voice: Voice, *, consent: Consent) -> VoiceConsent:
    return VoiceConsent.objects.create(
        voice=voice,
        subject=consent.subject,
        text_version=consent.text_version,
        channel=consent.channel,
        given_at=consent.time,
    )
