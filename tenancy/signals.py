"""What tenancy announces to the apps above it, which connect in their AppConfig.ready()
(tenancy imports no app)."""

from django.dispatch import Signal

#: A tenant was created; sent inside the creating transaction, so a receiver's failure
#: undoes the tenant too. Arguments: `tenant`.
tenant_created = Signal()
