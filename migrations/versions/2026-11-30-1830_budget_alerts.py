"""budget alerts: per tenant a webhook URL, a signing secret and thresholds (percent of the
period budget, the same for each end user's budget); an outbox of threshold crossings.

* `alert_settings` (one row per tenant): url, thresholds, secret.
* `alert_events`: one row per threshold crossed, per period and subject (tenant, or end user) —
  unique, so each fires at most once — queued by the trigger `spend_counters_budget_alerts`
  (function `tollgate_budget_alerts`) when a counter's spend rises past a threshold, in the
  settling transaction. It is also the delivery record: attempts, last status and error,
  delivered_at, next_attempt_at (the sender's backoff).

Revision ID: a3c4d5e6f7b8
Revises: f2b3c4d5e6a7
Create Date: 2026-11-30 18:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3c4d5e6f7b8"
down_revision: str | None = "f2b3c4d5e6a7"  # after key_policies (linear history)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUDGET_ALERTS = r"""
CREATE FUNCTION tollgate_budget_alerts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cfg record;
    lim numeric;
    pct integer;
BEGIN
    SELECT a.thresholds INTO cfg FROM alert_settings a WHERE a.tenant_id = NEW.tenant_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NEW.end_user_id IS NULL THEN
        SELECT COALESCE(t.monthly_budget_usd, p.monthly_budget_usd) INTO lim
          FROM tenants t JOIN plans p ON p.code = t.plan_code WHERE t.id = NEW.tenant_id;
    ELSE
        SELECT COALESCE(u.monthly_budget_usd, t.user_default_budget_usd) INTO lim
          FROM end_users u JOIN tenants t ON t.id = u.tenant_id WHERE u.id = NEW.end_user_id;
    END IF;
    IF lim IS NULL OR lim <= 0 THEN
        RETURN NULL;
    END IF;
    FOREACH pct IN ARRAY cfg.thresholds LOOP
        IF NEW.spent_usd >= lim * pct / 100 AND OLD.spent_usd < lim * pct / 100 THEN
            INSERT INTO alert_events (id, tenant_id, end_user_id, threshold_pct, period_start,
                                      period_end, limit_usd, spent_usd)
            VALUES (gen_random_uuid(), NEW.tenant_id, NEW.end_user_id, pct, NEW.period_start,
                    NEW.period_end, lim, NEW.spent_usd)
            ON CONFLICT DO NOTHING;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "alert_settings",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("thresholds", sa.ARRAY(sa.Integer()), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_alert_settings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_alert_settings")),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("end_user_id", sa.UUID(), nullable=True),
        sa.Column("threshold_pct", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("limit_usd", sa.Numeric(20, 10), nullable=False),
        sa.Column("spent_usd", sa.Numeric(20, 10), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_alert_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["end_user_id"],
            ["end_users.id"],
            name=op.f("fk_alert_events_end_user_id_end_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    op.create_index(
        "uq_alert_events_once",
        "alert_events",
        ["tenant_id", "end_user_id", "period_start", "threshold_pct"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_index(
        "ix_alert_events_pending",
        "alert_events",
        ["next_attempt_at"],
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.execute(BUDGET_ALERTS)
    op.execute(
        "CREATE TRIGGER spend_counters_budget_alerts AFTER UPDATE OF spent_usd ON spend_counters "
        "FOR EACH ROW WHEN (NEW.spent_usd > OLD.spent_usd) "
        "EXECUTE FUNCTION tollgate_budget_alerts()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER spend_counters_budget_alerts ON spend_counters")
    op.execute("DROP FUNCTION tollgate_budget_alerts()")
    op.drop_table("alert_events")
    op.drop_table("alert_settings")
