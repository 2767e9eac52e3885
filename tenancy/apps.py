"""Tenancy: tenants, their API tokens, console operators, and tenant scoping."""

from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenants and API tokens"
