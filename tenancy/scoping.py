"""Tenant scoping: the one way to read a tenant's records."""

from __future__ import annotations

from typing import TypeVar

from django.db import models

from core.exceptions import not_found
from tenancy.models import Tenant

M = TypeVar("M", bound=models.Model)


def owned(model_or_queryset: type[M] | models.QuerySet, tenant: Tenant) -> models.QuerySet:
    """The records of `tenant` only."""
    queryset = (
        model_or_queryset
        if isinstance(model_or_queryset, models.QuerySet)
        else model_or_queryset._default_manager.all()
    )
    return queryset.filter(tenant=tenant)


def get_owned(
    model_or_queryset: type[M] | models.QuerySet, tenant: Tenant, what: str, **lookup
) -> M:
    """One record of `tenant`; another tenant's record answers exactly like a missing one."""
    try:
        return owned(model_or_queryset, tenant).get(**lookup)
    except models.ObjectDoesNotExist:
        raise not_found(what) from None
