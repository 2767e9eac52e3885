"""Roles of a tenant ("mom", "dad"); every tenant starts with an undeletable default role."""

from django.apps import AppConfig


class RolesConfig(AppConfig):
    name = "roles"
    verbose_name = "Roles"

    def ready(self) -> None:
        from roles.services import create_default_role
        from tenancy.signals import tenant_created

        # Every tenant starts with its default role (API.md), made in the same transaction.
        tenant_created.connect(
            lambda sender, tenant, **kwargs: create_default_role(tenant),
            weak=False,
            dispatch_uid="roles.create_default_role",
        )
