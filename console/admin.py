"""Console pages of the tenancy app: tenants, their API tokens, and the operators limited
to one tenant. (They live here, with the console, so that tenancy imports no app.)"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpResponseNotAllowed, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from audit.models import AuditEvent
from audit.selectors import audit_export_csv, audit_export_jsonl
from console.admin_utils import count_of
from console.scoping import TenantScopedAdminMixin
from core.exceptions import ApiError
from credentials.services import token_create
from devices.models import Device
from tenancy.models import ApiToken, OperatorProfile, Tenant, TokenScope
from tenancy.services import tenant_set_up, token_issue, token_revoke
from voiceprint.models import Voice

#: Fields of a token the console shows. The digest is never one of them.
TOKEN_FIELDS = (
    "tenant",
    "label",
    "token_prefix",
    "scope",
    "device_id",
    "status",
    "created_at",
    "last_used_at",
    "revoked_at",
)


def _token_status(token: ApiToken) -> str:
    if token.is_active:
        return format_html('<span class="console-badge active">{}</span>', "active")
    return format_html('<span class="console-badge revoked">{}</span>', "revoked")


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("revoked", "revoked")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class ReadOnlyTokenMixin:
    """Tokens are made by "Create token" and ended by "Revoke"; nothing else changes them."""

    @admin.display(description="token")
    def token_prefix(self, token: ApiToken) -> str:
        return format_html("<code>{}</code>", f"vp_{token.prefix}_…")

    @admin.display(description="status")
    def status(self, token: ApiToken) -> str:
        return _token_status(token)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ApiTokenInline(ReadOnlyTokenMixin, admin.TabularInline):
    model = ApiToken
    fields = TOKEN_FIELDS[1:]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "API tokens (only their prefix is kept; the token itself is shown once)"


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    tenant_path = "pk"
    list_display = (
        "name",
        "is_active",
        "active_tokens",
        "device_count",
        "voice_count",
        "created_at",
    )
    list_filter = ("is_active", "require_consent")
    search_fields = ("name",)
    readonly_fields = ("created_at",)
    inlines = (ApiTokenInline,)
    actions = ("create_tokens",)
    change_form_template = "console/tenant_change_form.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_tokens=Count("tokens", filter=Q(tokens__revoked_at__isnull=True)),
                device_count=count_of(Device),
                voice_count=count_of(Voice),
            )
        )

    @admin.display(description="active tokens", ordering="active_tokens")
    def active_tokens(self, tenant: Tenant) -> int:
        return tenant.active_tokens

    @admin.display(description="devices", ordering="device_count")
    def device_count(self, tenant: Tenant) -> int:
        return tenant.device_count

    @admin.display(description="voices", ordering="voice_count")
    def voice_count(self, tenant: Tenant) -> int:
        return tenant.voice_count

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # What the "Create token" form offers: the scopes, and this tenant's devices.
        devices = Device.objects.filter(tenant_id=object_id).values_list("device_id", flat=True)
        extra_context = {
            **(extra_context or {}),
            "token_scopes": TokenScope.choices,
            "tenant_devices": list(devices) if str(object_id).isdigit() else [],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_inlines(self, request, obj):
        return self.inlines if obj else ()  # a new tenant's token is shown once saved

    def get_urls(self):
        return [
            path(
                "<path:object_id>/create-token/",
                self.admin_site.admin_view(self.create_token_view),
                name="tenancy_tenant_create_token",
            ),
            *super().get_urls(),
        ]

    def has_create_token_permission(self, request) -> bool:
        return request.user.has_perm("tenancy.add_apitoken")

    @transaction.atomic
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            issued = tenant_set_up(obj, token_label="console")
            request.console_issued_tokens = [(obj, issued)]

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        issued = getattr(request, "console_issued_tokens", None)
        if not issued or "_popup" in request.POST:
            return response
        return self._tokens_created(request, issued, next_url=response.url)

    @admin.action(
        description="Create a token for the selected tenants", permissions=("create_token",)
    )
    def create_tokens(self, request, queryset):
        issued = [(tenant, token_issue(tenant, label="console")) for tenant in queryset]
        return self._tokens_created(request, issued, next_url=request.get_full_path())

    def create_token_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_create_token_permission(request):
            raise PermissionDenied
        tenant = self.get_object(request, object_id)
        if tenant is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        label = request.POST.get("label", "").strip()[:100]
        scope = request.POST.get("scope", TokenScope.ADMIN)
        device_id = request.POST.get("device", "").strip() if scope == TokenScope.DEVICE else ""
        try:
            _, issued = token_create(tenant, scope=scope, device_id=device_id, label=label)
        except ApiError as error:  # an unknown scope or device, or a device token without one
            self.message_user(request, f"No token created: {error.message}", messages.ERROR)
            return HttpResponseRedirect("../change/")
        return self._tokens_created(
            request, [(tenant, issued)], next_url="../change/", scope=scope, device_id=device_id
        )

    def _tokens_created(self, request, issued, next_url, scope="", device_id=""):
        """The one page that ever shows a token in clear. Rendered, never redirected to,
        so the token is not kept in a message, a session or a URL (and, as every admin
        view, never cached)."""
        context = {
            **self.admin_site.each_context(request),
            "title": "New API token" if len(issued) == 1 else "New API tokens",
            "opts": self.opts,
            "issued": issued,
            "next_url": next_url,
            "scope": scope,
            "device_id": device_id,
        }
        return TemplateResponse(request, "console/tokens_created.html", context)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyTokenMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = (
        "token_prefix",
        "tenant",
        "label",
        "scope",
        "device_id",
        "status",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("tenant", "scope", TokenStatusFilter)
    list_select_related = ("tenant",)
    search_fields = ("prefix", "label", "tenant__name")
    fields = TOKEN_FIELDS
    readonly_fields = TOKEN_FIELDS
    actions = ("revoke_tokens",)

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("tenancy.change_apitoken")

    @admin.action(description="Revoke the selected tokens", permissions=("revoke",))
    def revoke_tokens(self, request, queryset):
        active = [token for token in queryset if token.is_active]
        for token in active:
            token_revoke(token)
        self.message_user(request, f"Revoked {len(active)} token(s).", messages.SUCCESS)


class OperatorProfileInline(admin.StackedInline):
    model = OperatorProfile
    can_delete = True
    verbose_name = "console operator"
    verbose_name_plural = (
        "console operator: limit this staff user to one tenant "
        '(and add them to the group "Tenant operators")'
    )
    fields = ("tenant",)


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class ConsoleUserAdmin(UserAdmin):
    inlines = (*UserAdmin.inlines, OperatorProfileInline)
    list_display = (*UserAdmin.list_display, "operator_tenant")
    list_select_related = ("operator_profile__tenant",)

    @admin.display(description="operator of", ordering="operator_profile__tenant__name")
    def operator_tenant(self, user) -> str:
        profile = getattr(user, "operator_profile", None)
        return str(profile.tenant) if profile else "—"


@admin.register(AuditEvent)
class AuditEventAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """The audit log: read only (append-only; `manage.py purge_audit` ages it out), filtered
    here, exported as CSV or JSON lines (select events, or all of a filtered list)."""

    list_display = (
        "at", "tenant", "actor", "action", "object_type", "object_id", "outcome", "request_id",
    )  # fmt: skip
    list_filter = ("tenant", "action", "object_type", "outcome", "at")
    list_select_related = ("tenant",)
    search_fields = ("object_id", "actor", "request_id", "action")
    date_hierarchy = "at"
    readonly_fields = (*list_display, "details")
    actions = ("export_csv", "export_jsonl")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Export the selected events as CSV")
    def export_csv(self, request, queryset):
        return _export(audit_export_csv(queryset.order_by("at", "pk")), "text/csv", "csv")

    @admin.action(description="Export the selected events as JSON lines")
    def export_jsonl(self, request, queryset):
        rows = audit_export_jsonl(queryset.order_by("at", "pk"))
        return _export(rows, "application/x-ndjson", "jsonl")


def _export(rows, content_type: str, extension: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(rows, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit.{extension}"'
    return response
