"""Roles of a tenant ("mom", "dad"); every tenant starts with an undeletable default role."""

from django.apps import AppConfig


class RolesConfig(AppConfig):
    name = "roles"
    verbose_name = "Roles"

    def ready(self) -> None:
        from roles.services import role_create_default
        from tenancy.signals import tenant_created

        # Every tenant starts with its default role (API.md), made in the same transaction.
        tenant_created.connect(
            lambda sender, tenant, **kwargs: role_create_default(tenant),
            weak=False,
            dispatch_uid="roles.role_create_default",
        )
