"""The "Tenant operators" group: the model permissions an operator needs in the console.

Which tenant an operator works on comes from their OperatorProfile; this group only says
what they may do there. A superuser adds an operator as a staff user in this group with a
profile naming the tenant.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

OPERATOR_GROUP = "Tenant operators"

#: (app_label, model, actions) granted to operators.
OPERATOR_PERMISSIONS = (
    ("tenancy", "tenant", ("view",)),
    ("tenancy", "apitoken", ("view", "add", "change")),
    ("roles", "role", ("view", "add", "change", "delete")),
    ("devices", "device", ("view", "add", "change", "delete")),
    ("interrupts", "roleinterrupt", ("view", "add", "change", "delete")),
    ("voiceprint", "voice", ("view", "add", "change", "delete")),
)


def operator_permissions(using: str = "default") -> list[Permission]:
    codenames = [
        (app_label, f"{action}_{model}")
        for app_label, model, actions in OPERATOR_PERMISSIONS
        for action in actions
    ]
    permissions = (
        Permission.objects.using(using)
        .filter(
            content_type__app_label__in={app_label for app_label, _ in codenames},
            codename__in={codename for _, codename in codenames},
        )
        .select_related("content_type")
    )
    return [p for p in permissions if (p.content_type.app_label, p.codename) in codenames]


def ensure_operator_group(*, using: str = "default", **kwargs) -> None:
    """post_migrate: create the group, or add permissions it lacks (never removes any)."""
    group, _ = Group.objects.using(using).get_or_create(name=OPERATOR_GROUP)
    group.permissions.add(*operator_permissions(using))
