"""Quotas that cannot be overshot: reserve the worst case before the upstream call, settle to the
actual cost after it, all in Postgres (see migrations/…_quotas.py for the two functions)."""
