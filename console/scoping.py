"""Which tenant's records a console user may see, and the ModelAdmin mixin enforcing it.

A superuser sees every tenant. A staff user with an OperatorProfile sees only the records of
the profile's tenant: lists, change pages, form choices and saves are all scoped, so another
tenant's record is simply absent. A staff user with neither sees no tenant records at all.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import models
from django.http import HttpRequest

from tenancy.models import Tenant


def operator_tenant(request: HttpRequest) -> Tenant | None:
    """The tenant a non-superuser works on (None when they have no profile)."""
    try:
        profile = request.user.operator_profile
    except (AttributeError, ObjectDoesNotExist):
        return None
    return profile.tenant


def is_unrestricted(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.is_superuser


def scope(queryset: models.QuerySet, request: HttpRequest, tenant_path: str) -> models.QuerySet:
    """`queryset` limited to the records `request.user` may see; `tenant_path` is the
    lookup from the model to its tenant ("tenant", "voice__tenant", or "pk" for tenants)."""
    if is_unrestricted(request):
        return queryset
    tenant = operator_tenant(request)
    if tenant is None:
        return queryset.none()
    return queryset.filter(**{tenant_path: tenant.pk})


def tenant_path_of(model: type[models.Model]) -> str | None:
    """How to reach the tenant from `model`, for the models the console offers as choices."""
    if model is Tenant:
        return "pk"
    field_names = {field.name for field in model._meta.get_fields()}
    if "tenant" in field_names:
        return "tenant"
    if "voice" in field_names:
        return "voice__tenant"
    return None


def scoped_choices(model: type[models.Model], request: HttpRequest) -> models.QuerySet:
    queryset = model._default_manager.all()
    path = tenant_path_of(model)
    return queryset if path is None else scope(queryset, request, path)


class TenantScopedAdminMixin:
    """Scopes a ModelAdmin (or inline) to the tenant of the user; see the module docstring.

    For an operator the tenant field offers only their tenant (preselected), every
    relation to a tenant-owned model offers only their tenant's records, the tenant filter
    and column are dropped, and saving sets the tenant whatever the form said.
    """

    #: Lookup from this admin's model to its tenant.
    tenant_path = "tenant"

    def get_queryset(self, request):
        return scope(super().get_queryset(request), request, self.tenant_path)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        model = db_field.remote_field.model
        kwargs.setdefault("queryset", scoped_choices(model, request))
        tenant = operator_tenant(request)
        if model is Tenant and tenant is not None and not is_unrestricted(request):
            kwargs.setdefault("initial", tenant.pk)
            kwargs.setdefault("empty_label", None)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("queryset", scoped_choices(db_field.remote_field.model, request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if is_unrestricted(request):
            return filters
        return [f for f in filters if _filter_field(f) != "tenant"]

    def get_list_display(self, request):
        columns = super().get_list_display(request)
        if is_unrestricted(request):
            return columns
        return [c for c in columns if c != "tenant"]

    def save_model(self, request, obj, form, change):
        self.assign_tenant(request, obj)
        super().save_model(request, obj, form, change)

    def assign_tenant(self, request, obj) -> None:
        """Give `obj` the operator's tenant, whatever the form said (for an admin whose
        save_model calls a service instead of saving `obj`)."""
        if not is_unrestricted(request) and self.tenant_path == "tenant":
            tenant = operator_tenant(request)
            if tenant is None:  # such a user is offered no tenant; never write for them
                raise PermissionDenied
            obj.tenant = tenant


def _filter_field(list_filter) -> str | None:
    if isinstance(list_filter, str):
        return list_filter
    if isinstance(list_filter, tuple | list):
        return list_filter[0]
    return None
