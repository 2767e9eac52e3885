"""`manage.py create_token TENANT`: another API token, shown once."""

from django.core.management.base import BaseCommand, CommandError

from tenancy.models import Tenant
from tenancy.services import token_issue


class Command(BaseCommand):
    help = "Add an API token to a tenant (by name or id) and print it last."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant name or numeric id")
        parser.add_argument("--label", default="", help="a note to recognise the token by")

    def handle(self, *args, tenant: str, label: str, **options):
        lookup = {"pk": int(tenant)} if tenant.isdigit() else {"name": tenant}
        try:
            found = Tenant.objects.get(**lookup)
        except Tenant.DoesNotExist:
            raise CommandError(f"no tenant {tenant!r}") from None
        issued = token_issue(found, label=label)
        self.stdout.write(f"New API token for tenant {found.name!r}; it is shown only now:")
        self.stdout.write(issued.plaintext)
