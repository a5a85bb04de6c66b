"""initial schema: plans (seeded free and pro), tenants, end users, API keys, the usage ledger
and the per-period spend counters.

Revision ID: 7f50eb68c100
Revises:
Create Date: 2026-11-20 22:23:33.831489+00:00
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7f50eb68c100"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("monthly_budget_usd", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("rpm_limit", sa.Integer(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("quota_mode", sa.String(length=8), server_default="hard", nullable=False),
        sa.Column("allowed_models", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("razorpay_plan_id", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("quota_mode IN ('hard', 'soft')", name=op.f("ck_plans_quota_mode")),
        sa.CheckConstraint("monthly_budget_usd >= 0", name=op.f("ck_plans_budget_non_negative")),
        sa.CheckConstraint(
            "rpm_limit > 0 AND max_concurrent > 0", name=op.f("ck_plans_limits_positive")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_plans")),
        sa.UniqueConstraint("razorpay_plan_id", name=op.f("uq_plans_razorpay_plan_id")),
    )
    plans = sa.table(
        "plans",
        sa.column("code", sa.String),
        sa.column("name", sa.Text),
        sa.column("monthly_budget_usd", sa.Numeric),
        sa.column("rpm_limit", sa.Integer),
        sa.column("max_concurrent", sa.Integer),
    )
    op.bulk_insert(
        plans,
        [
            {
                "code": "free",
                "name": "Free",
                "monthly_budget_usd": Decimal("5"),
                "rpm_limit": 20,
                "max_concurrent": 2,
            },
            {
                "code": "pro",
                "name": "Pro",
                "monthly_budget_usd": Decimal("100"),
                "rpm_limit": 600,
                "max_concurrent": 32,
            },
        ],
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("plan_code", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("monthly_budget_usd", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("max_concurrent", sa.Integer(), nullable=True),
        sa.Column("quota_mode", sa.String(length=8), nullable=True),
        sa.Column("user_default_budget_usd", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "quota_mode IS NULL OR quota_mode IN ('hard', 'soft')",
            name=op.f("ck_tenants_quota_mode"),
        ),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_tenants_status")),
        sa.ForeignKeyConstraint(
            ["plan_code"], ["plans.code"], name=op.f("fk_tenants_plan_code_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_index(op.f("ix_tenants_plan_code"), "tenants", ["plan_code"], unique=False)
    op.create_table(
        "end_users",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=False),
        sa.Column("monthly_budget_usd", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_end_users_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_end_users")),
        sa.UniqueConstraint("tenant_id", "external_id", name="uq_end_users_tenant"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("end_user_id", sa.UUID(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["end_user_id"],
            ["end_users.id"],
            name=op.f("fk_api_keys_end_user_id_end_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"], unique=False)
    op.create_table(
        "spend_counters",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("end_user_id", sa.UUID(), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "spent_usd", sa.Numeric(precision=20, scale=10), server_default="0", nullable=False
        ),
        sa.Column(
            "reserved_usd", sa.Numeric(precision=20, scale=10), server_default="0", nullable=False
        ),
        sa.Column("requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("in_flight", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "reserved_usd >= 0 AND in_flight >= 0", name=op.f("ck_spend_counters_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["end_user_id"],
            ["end_users.id"],
            name=op.f("fk_spend_counters_end_user_id_end_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_spend_counters_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spend_counters")),
    )
    op.create_index(
        "uq_spend_counters_scope",
        "spend_counters",
        ["tenant_id", "end_user_id", "period_start"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "usage_ledger",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("end_user_id", sa.UUID(), nullable=True),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_write_5m_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_write_1h_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("web_search_requests", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "cost_usd", sa.Numeric(precision=20, scale=10), server_default="0", nullable=False
        ),
        sa.Column(
            "reserved_usd", sa.Numeric(precision=20, scale=10), server_default="0", nullable=False
        ),
        sa.Column("price_version", sa.String(length=32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_token_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("upstream_request_id", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_type", sa.Text(), nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('in_flight', 'ok', 'incomplete', 'client_disconnected', 'upstream_error', 'timeout', 'abandoned')",
            name=op.f("ck_usage_ledger_status"),
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_usage_ledger_api_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["end_user_id"], ["end_users.id"], name=op.f("fk_usage_ledger_end_user_id_end_users")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_usage_ledger_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_ledger")),
    )
    op.create_index(
        "ix_usage_ledger_in_flight",
        "usage_ledger",
        ["started_at"],
        unique=False,
        postgresql_where=sa.text("status = 'in_flight'"),
    )
    op.create_index(
        "ix_usage_ledger_key_started", "usage_ledger", ["api_key_id", "started_at"], unique=False
    )
    op.create_index("ix_usage_ledger_started", "usage_ledger", ["started_at"], unique=False)
    op.create_index(
        "ix_usage_ledger_tenant_started", "usage_ledger", ["tenant_id", "started_at"], unique=False
    )
    op.create_index(
        "ix_usage_ledger_user_started", "usage_ledger", ["end_user_id", "started_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_user_started", table_name="usage_ledger")
    op.drop_index("ix_usage_ledger_tenant_started", table_name="usage_ledger")
    op.drop_index("ix_usage_ledger_started", table_name="usage_ledger")
    op.drop_index("ix_usage_ledger_key_started", table_name="usage_ledger")
    op.drop_index(
        "ix_usage_ledger_in_flight",
        table_name="usage_ledger",
        postgresql_where=sa.text("status = 'in_flight'"),
    )
    op.drop_table("usage_ledger")
    op.drop_index(
        "uq_spend_counters_scope", table_name="spend_counters", postgresql_nulls_not_distinct=True
    )
    op.drop_table("spend_counters")
    op.drop_index(op.f("ix_api_keys_tenant_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("end_users")
    op.drop_index(op.f("ix_tenants_plan_code"), table_name="tenants")
    op.drop_table("tenants")
    op.drop_table("plans")
