"""Small helpers shared by the apps' admin modules."""

from __future__ import annotations

from django.db import models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html, format_html_join


def count_of(model: type[models.Model], field: str = "tenant") -> Coalesce:
    """A subquery annotation: how many `model` rows point at the outer row through `field`
    (for relations without a reverse accessor, such as TenantOwned.tenant)."""
    counts = (
        model._default_manager.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=models.IntegerField()), 0)


def admin_link(obj: models.Model, text: str | None = None) -> str:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))


def admin_links(objects, empty: str = "—") -> str:
    objects = list(objects)
    if not objects:
        return empty
    return format_html_join(", ", "{}", ((admin_link(obj),) for obj in objects))


def adopt(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's unsaved `obj` the record a service saved in its place, so that the
    admin's log entry, message and redirect name that record."""
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db
