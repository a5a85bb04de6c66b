"""Usage reports: `GET /admin/usage` (JSON or streamed CSV) over the ledger and its daily
rollup, and the query builder the tenant's `GET /v1/usage?group_by=` shares."""
