"""The operator's API under `/admin`: tenants, their limits and keys, end-user limits, plans.
Every route needs `Authorization: Bearer $TOLLGATE_ADMIN_TOKEN` (see auth.py)."""
