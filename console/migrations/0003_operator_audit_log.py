"""Operators may read (and export) their tenant's audit log."""

from importlib import import_module

from django.db import migrations

GROUP = "Tenant operators"


def _permission(apps, using: str):
    initial = import_module("console.migrations.0001_tenant_operators_group")
    initial._create_model_permissions(apps, using, labels=("audit",))
    Permission = apps.get_model("auth", "Permission")
    return Permission.objects.using(using).filter(
        content_type__app_label="audit", codename="view_auditevent"
    )


def grant(apps, schema_editor) -> None:
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    group.permissions.add(*_permission(apps, using))


def revoke(apps, schema_editor) -> None:
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.using(using).filter(name=GROUP):
        group.permissions.remove(*_permission(apps, using))


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0002_operator_operating_points"),
        ("audit", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
