"""The "Tenant operators" group: the model permissions an operator needs in the console.

Which tenant an operator works on comes from their OperatorProfile; this group only says
what they may do there. A superuser adds an operator as a staff user in this group with a
profile naming the tenant. `migrate` creates the group and its permissions
(console/migrations/0001_tenant_operators_group.py).
"""

OPERATOR_GROUP = "Tenant operators"
