"""tollgate_void: release a reservation whose request never reached the upstream.

A reserve can commit after the gateway gave up waiting for its answer (the client-side timeout
fired); the gateway then refused the request, so no one will settle that in-flight row. The
process that wrote it notices (the row is not among its open requests) and voids it: the row is
deleted and its reservation and concurrency slot released. Also an index for that lookup.

Revision ID: c4e6a8f0b2d4
Revises: 9b1d3f5a7c20
Create Date: 2026-11-30 15:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c4e6a8f0b2d4"
down_revision: str | None = "9b1d3f5a7c20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VOID = """
CREATE OR REPLACE FUNCTION tollgate_void(p_id uuid)
RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    row record;
BEGIN
    SELECT l.tenant_id, l.end_user_id, l.reserved_usd, l.period_start INTO row
      FROM usage_ledger l WHERE l.id = p_id AND l.status = 'in_flight' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM usage_ledger WHERE id = p_id;
    IF row.period_start IS NOT NULL THEN
        UPDATE spend_counters
           SET reserved_usd = reserved_usd - row.reserved_usd, in_flight = in_flight - 1
         WHERE tenant_id = row.tenant_id AND end_user_id IS NULL
           AND period_start = row.period_start;
        IF row.end_user_id IS NOT NULL THEN
            UPDATE spend_counters SET reserved_usd = reserved_usd - row.reserved_usd
             WHERE tenant_id = row.tenant_id AND end_user_id = row.end_user_id
               AND period_start = row.period_start;
        END IF;
    END IF;
    RETURN true;
END
$$;
"""


def upgrade() -> None:
    op.execute(VOID)
    op.create_index(
        "ix_usage_ledger_in_flight_owner",
        "usage_ledger",
        ["owner"],
        postgresql_where="status = 'in_flight'",
    )


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_in_flight_owner", table_name="usage_ledger")
    op.execute("DROP FUNCTION tollgate_void(uuid)")
