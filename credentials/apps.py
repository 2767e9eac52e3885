"""Credentials: issuing, listing and revoking a tenant's API tokens by scope.

Tokens themselves (format, hashing, lookup) are tenancy's; issuing a `device` token needs
the device to exist, which tenancy (below devices) cannot check, so issuing lives here,
above both: the `create_token` command and the `tokens` endpoints."""

from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "credentials"
    verbose_name = "Credentials"
