"""Console: which roles may interrupt an agent, as rows, and one page per agent with its
roles and whether an uncertain speaker may interrupt it."""

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
from interrupts.models import AgentPolicy, RoleInterrupt
from interrupts.selectors import agent_uncertain_interrupt_get, role_interrupt_list
from interrupts.services import agent_interrupts_update


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
        """Every role of a tenant with a checkbox (may it interrupt this agent?), and one
        for a speaker identify is uncertain about."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else request.GET
        form = AgentForm(data if "agent_id" in data else None, request=request)
        roles = uncertain_interrupt = None
        if form.is_valid():
            tenant, agent_id = form.cleaned_data["tenant"], form.cleaned_data["agent_id"]
            if request.method == "POST":
                return self._agent_save(request, tenant, agent_id)
            roles = role_interrupt_list(tenant, agent_id=agent_id)
            uncertain_interrupt = agent_uncertain_interrupt_get(tenant, agent_id=agent_id)
        context = {
            **self.admin_site.each_context(request),
            "title": "Interrupt settings per agent",
            "opts": self.opts,
            "form": form,
            "roles": roles,
            "uncertain_interrupt": uncertain_interrupt,
            "known_agents": self._known_agents(request),
            "can_change": self.has_change_permission(request),
        }
        return TemplateResponse(request, "console/agent_interrupts.html", context)

    def _agent_save(self, request, tenant, agent_id: str) -> HttpResponseRedirect:
        """The page's checkboxes: every role's and the uncertain speaker's, in one write."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        allowed = set(request.POST.getlist("interrupt"))
        roles = role_interrupt_list(tenant, agent_id=agent_id)
        agent_interrupts_update(
            tenant,
            agent_id=agent_id,
            role_settings={role.role_id: role.role_id in allowed for role in roles},
            uncertain_interrupt="uncertain_interrupt" in request.POST,
        )
        self.message_user(request, f"Saved the settings of agent {agent_id}.", messages.SUCCESS)
        query = urlencode({"tenant": tenant.pk, "agent_id": agent_id})
        return HttpResponseRedirect(f"{request.path}?{query}")

    @staticmethod
    def _known_agents(request) -> list[dict]:
        """The agents with any stored setting (per role or their own), that the user may see."""
        agents = set()
        for model in (RoleInterrupt, AgentPolicy):
            rows = scope(model.objects.all(), request, "tenant")
            agents.update(rows.values_list("tenant_id", "tenant__name", "agent_id").distinct())
        return [
            {
                "tenant": name,
                "agent_id": agent,
                "query": urlencode({"tenant": tenant_id, "agent_id": agent}),
            }
            for tenant_id, name, agent in sorted(agents, key=lambda row: row[1:])
        ]
