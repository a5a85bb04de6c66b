"""What `tollgate key list` prints (its arguments live in api/commands.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from api.keys.service import KeyListing
from api.money import format_usd

COLUMNS = (
    "ID", "PREFIX", "NAME", "USER", "CREATED", "LAST USED", "EXPIRES", "REVOKED", "MODELS", "BUDGET"
)  # fmt: skip


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def key_table(tenant_id: uuid.UUID, keys: Sequence[KeyListing]) -> str:
    """An aligned table of the tenant's keys (times in UTC, "-" for never/none); the key
    itself is never shown, only its prefix."""
    if not keys:
        return f"tenant {tenant_id} has no keys"
    rows = [COLUMNS] + [
        (
            str(key.id),
            key.prefix,
            key.name or "-",
            key.user or "-",
            _when(key.created_at),
            _when(key.last_used_at),
            _when(key.expires_at),
            _when(key.revoked_at),
            ",".join(key.allowed_models) if key.allowed_models is not None else "-",
            format_usd(key.monthly_budget_usd) if key.monthly_budget_usd is not None else "-",
        )
        for key in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
