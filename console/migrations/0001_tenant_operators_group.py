"""The "Tenant operators" group with the model permissions an operator needs in the console.

A data migration, so that `migrate` creates the group on every new database (a post_migrate
handler on this app never ran: Django sends that signal only to apps with models). The
permissions are frozen here; a later change to them is a later migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.models import Q

GROUP = "Tenant operators"

#: (app_label, model, actions) granted to operators.
PERMISSIONS = (
    ("tenancy", "tenant", ("view",)),
    ("tenancy", "apitoken", ("view", "add", "change")),
    ("roles", "role", ("view", "add", "change", "delete")),
    ("devices", "device", ("view", "add", "change", "delete")),
    ("interrupts", "roleinterrupt", ("view", "add", "change", "delete")),
    ("voiceprint", "voice", ("view", "add", "change", "delete")),
)


def _create_model_permissions(apps, using: str, labels=None) -> None:
    """Django creates permissions after the last migration (post_migrate); this one needs
    them now: those of the apps of PERMISSIONS, or of the app `labels` (later migrations)."""
    labels = labels or dict.fromkeys(app_label for app_label, _, _ in PERMISSIONS)
    for label in labels:
        app_config = apps.get_app_config(label)
        app_config.models_module = True  # historical apps have none, and would be skipped
        try:
            create_permissions(app_config, verbosity=0, using=using, apps=apps)
        finally:
            app_config.models_module = None


def create_group(apps, schema_editor) -> None:
    using = schema_editor.connection.alias
    _create_model_permissions(apps, using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    wanted = Q()
    for app_label, model, actions in PERMISSIONS:
        wanted |= Q(
            content_type__app_label=app_label,
            content_type__model=model,
            codename__in=[f"{action}_{model}" for action in actions],
        )
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    group.permissions.add(*Permission.objects.using(using).filter(wanted))


def delete_group(apps, schema_editor) -> None:
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tenancy", "0002_console_operators"),
        ("roles", "0001_initial"),
        ("devices", "0001_initial"),
        ("interrupts", "0001_initial"),
        ("voiceprint", "0002_centroid_hnsw_indexes"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]
