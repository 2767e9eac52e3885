"""Operators may see, fit (add) and reset (delete) their tenant's operating points."""

from importlib import import_module

from django.db import migrations
from django.db.models import Q

GROUP = "Tenant operators"
ACTIONS = ("view", "add", "delete")


def _permissions(apps, using: str):
    initial = import_module("console.migrations.0001_tenant_operators_group")
    initial._create_model_permissions(apps, using)  # it creates all of voiceprint's
    Permission = apps.get_model("auth", "Permission")
    return Permission.objects.using(using).filter(
        Q(content_type__app_label="voiceprint", content_type__model="operatingpoint"),
        codename__in=[f"{action}_operatingpoint" for action in ACTIONS],
    )


def grant(apps, schema_editor) -> None:
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    group.permissions.add(*_permissions(apps, using))


def revoke(apps, schema_editor) -> None:
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.using(using).filter(name=GROUP):
        group.permissions.remove(*_permissions(apps, using))


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_tenant_operators_group"),
        ("voiceprint", "0004_operating_point"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
