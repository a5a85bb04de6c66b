"""What a tenant has spent this period, from the quota counters (`GET /v1/usage`)."""
