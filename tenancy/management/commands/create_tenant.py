"""`manage.py create_tenant NAME`: a tenant with its default role and first token."""

from django.core.management.base import BaseCommand, CommandError

from tenancy.models import Tenant
from tenancy.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant (with its default role) and print its first API token last."

    def add_arguments(self, parser):
        parser.add_argument("name", help="unique tenant name")

    def handle(self, *args, name: str, **options):
        name = name.strip()
        if not name:
            raise CommandError("the tenant name must not be empty")
        if Tenant.objects.filter(name=name).exists():
            raise CommandError(f"tenant {name!r} already exists; use create_token to add a token")
        tenant, issued = tenant_create(name=name)
        self.stdout.write(f"Created tenant {tenant.name!r} (id {tenant.pk}).")
        self.stdout.write("Its API token follows; it is shown only now, keep it safe:")
        self.stdout.write(issued.plaintext)
