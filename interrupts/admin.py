"""Console: which roles may interrupt an agent, as rows and as one page per agent."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from console.forms import AgentForm
from console.scoping import TenantScopedAdminMixin, scope
from interrupts.models import RoleInterrupt
from interrupts.selectors import role_interrupt_list
from interrupts.services import role_interrupt_update


class RoleInterruptForm(forms.ModelForm):
    class Meta:
        model = RoleInterrupt
        fields = ("tenant", "agent_id", "role", "interrupt")

    def clean(self):
        cleaned = super().clean()
        tenant, role = cleaned.get("tenant"), cleaned.get("role")
        if tenant and role and role.tenant_id != tenant.pk:
            self.add_error("role", f"This role belongs to tenant {role.tenant}.")
        return cleaned


@admin.register(RoleInterrupt)
class RoleInterruptAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    form = RoleInterruptForm
    list_display = ("agent", "role", "tenant", "interrupt", "updated_at")
    list_display_links = ("role",)
    list_editable = ("interrupt",)
    list_filter = ("tenant", "interrupt", ("role", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("tenant", "role")
    search_fields = ("agent_id", "role__name", "tenant__name")
    change_list_template = "console/roleinterrupt_change_list.html"

    @admin.display(description="agent", ordering="agent_id")
    def agent(self, setting: RoleInterrupt) -> str:
        query = urlencode({"tenant": setting.tenant_id, "agent_id": setting.agent_id})
        url = reverse("admin:interrupts_roleinterrupt_agent")
        return format_html('<a href="{}?{}">{}</a>', url, query, setting.agent_id)

    def get_urls(self):
        return [
            path(
                "agent/",
                self.admin_site.admin_view(self.agent_view),
                name="interrupts_roleinterrupt_agent",
            ),
            *super().get_urls(),
        ]

    def agent_view(self, request):
        """Every role of a tenant with a checkbox: may it interrupt this agent?"""
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else request.GET
        form = AgentForm(data if "agent_id" in data else None, request=request)
        roles = None
        if form.is_valid():
            tenant, agent_id = form.cleaned_data["tenant"], form.cleaned_data["agent_id"]
            if request.method == "POST":
                if not self.has_change_permission(request):
                    raise PermissionDenied
                allowed = set(request.POST.getlist("interrupt"))
                roles = role_interrupt_list(tenant, agent_id=agent_id)
                role_interrupt_update(
                    tenant,
                    agent_id=agent_id,
                    settings={role.role_id: role.role_id in allowed for role in roles},
                )
                self.message_user(
                    request, f"Saved the settings of agent {agent_id}.", messages.SUCCESS
                )
                query = urlencode({"tenant": tenant.pk, "agent_id": agent_id})
                return HttpResponseRedirect(f"{request.path}?{query}")
            roles = role_interrupt_list(tenant, agent_id=agent_id)
        known_agents = (
            scope(RoleInterrupt.objects.all(), request, "tenant")
            .values_list("tenant_id", "tenant__name", "agent_id")
            .order_by("tenant__name", "agent_id")
            .distinct()
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Role interrupts per agent",
            "opts": self.opts,
            "form": form,
            "roles": roles,
            "known_agents": [
                {
                    "tenant": name,
                    "agent_id": agent,
                    "query": urlencode({"tenant": tenant_id, "agent_id": agent}),
                }
                for tenant_id, name, agent in known_agents
            ],
            "can_change": self.has_change_permission(request),
        }
        return TemplateResponse(request, "console/agent_interrupts.html", context)
