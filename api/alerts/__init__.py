"""Budget alerts to tenants: settings (`service.py`), the signed webhook (`signing.py`) and the
background sender that delivers the outbox with retries (`sender.py`). Threshold crossings are
queued in the database by the settle path itself (trigger `spend_counters_budget_alerts`)."""
