"""Events the audit log records from signals: tokens issued and revoked, console logins and
console actions (django.contrib.admin's own log), wherever they were made."""

from __future__ import annotations

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save
from django.dispatch import receiver

from audit.context import console_actor
from audit.services import audit_record
from tenancy.models import ApiToken

CONSOLE_VERBS = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}


@receiver(post_save, sender=ApiToken, dispatch_uid="audit_token_saved")
def token_saved(sender, instance: ApiToken, created: bool, update_fields=None, **kwargs) -> None:
    if created:
        action = "token.issue"
    elif update_fields and "revoked_at" in update_fields and instance.revoked_at:
        action = "token.revoke"
    else:
        return  # last_used_at and other bookkeeping
    audit_record(
        instance.tenant, action=action, object_type="token", object_id=instance.prefix,
        details={"label": instance.label},
    )  # fmt: skip


@receiver(user_logged_in, dispatch_uid="audit_console_login")
def console_login(sender, request, user, **kwargs) -> None:
    # The request began before the login: its actor is not the user yet.
    audit_record(
        _operator_tenant(user), action="console.login", object_type="user",
        object_id=user.get_username(), actor=console_actor(user.get_username()),
    )  # fmt: skip


@receiver(post_save, sender=LogEntry, dispatch_uid="audit_console_action")
def console_action(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    if not created:
        return
    verb = CONSOLE_VERBS.get(instance.action_flag, "action")
    model = instance.content_type.model if instance.content_type_id else ""
    audit_record(
        _operator_tenant(instance.user), action=f"console.{verb}", object_type=model,
        object_id=instance.object_id or "", details={"object": instance.object_repr[:200]},
    )  # fmt: skip


def _operator_tenant(user):
    """The tenant a console user works on (None for staff of the whole platform)."""
    profile = getattr(user, "operator_profile", None)
    return profile.tenant if profile is not None else None
