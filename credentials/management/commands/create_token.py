"""`manage.py create_token TENANT [--scope admin|device|read] [--device DEVICE_ID]`:
another API token, shown once."""

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ApiError
from credentials.services import token_create
from tenancy.models import Tenant, TokenScope


class Command(BaseCommand):
    help = (
        "Add an API token to a tenant (by name or id) and print it last. --scope admin "
        "(default: everything), read (GET only) or device (one device: --device)."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant name or numeric id")
        parser.add_argument("--label", default="", help="a note to recognise the token by")
        parser.add_argument(
            "--scope", default=TokenScope.ADMIN, choices=TokenScope.values, help="what it may do"
        )
        parser.add_argument("--device", default="", help="the device_id of a device token")

    def handle(self, *args, tenant: str, label: str, scope: str, device: str, **options):
        lookup = {"pk": int(tenant)} if tenant.isdigit() else {"name": tenant}
        try:
            found = Tenant.objects.get(**lookup)
        except Tenant.DoesNotExist:
            raise CommandError(f"no tenant {tenant!r}") from None
        if scope == TokenScope.DEVICE and not device:
            raise CommandError("--scope device needs --device DEVICE_ID")
        if device and scope != TokenScope.DEVICE:
            raise CommandError("--device goes with --scope device only")
        try:
            _, issued = token_create(found, scope=scope, device_id=device, label=label)
        except ApiError as error:
            raise CommandError(error.message) from None
        bound = f" for device {device!r}" if device else ""
        self.stdout.write(
            f"New {scope} API token{bound} of tenant {found.name!r}; it is shown only now:"
        )
        self.stdout.write(issued.plaintext)
