"""price book: model prices as versioned rows, re-costing records, and the ledger keeps the two
modifiers a re-cost needs (`speed`, `inference_geo`).

* `model_prices`: one row per (model, effective_from), never updated; `id` is the version a
  ledger row's `price_version` names. Scalar rates are columns; the modifiers (tiers, fast,
  geo, batch, server tools) are a JSONB object validated by api/pricing/model.py. The rows are
  seeded from the shipped api/pricing/prices.json by the application (idempotent import), so
  this migration does not depend on the file's content.
* `price_recosts`: one row per `tollgate prices recost`, with the before and after totals.
* `tollgate_settle` takes `p_speed` and `p_inference_geo` (both default NULL, so callers that
  pass 16 arguments, like the reaper, are unchanged; the old 16-argument function is dropped);
  its body is otherwise the one from 2026-11-20-2330_usage_rollups.py.

Revision ID: b7c9d1e3f5a7
Revises: e5f7a9b1c3d5
Create Date: 2026-11-30 13:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b7c9d1e3f5a7"
down_revision: str | None = "e5f7a9b1c3d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MONEY = sa.Numeric(precision=20, scale=10)
_OLD_ARGS = "p_upstream_request_id text, p_http_status integer, p_error_type text)"
_NEW_ARGS = (
    "p_upstream_request_id text, p_http_status integer, p_error_type text,\n"
    "    p_speed text DEFAULT NULL, p_inference_geo text DEFAULT NULL)"
)
_OLD_SET = "error_type = p_error_type\n"
_NEW_SET = "error_type = p_error_type, speed = p_speed, inference_geo = p_inference_geo\n"
OLD_SIGNATURE = (
    "tollgate_settle(uuid, text, text, bigint, bigint, bigint, bigint, bigint, bigint, "
    "numeric, text, timestamptz, timestamptz, text, integer, text)"
)
NEW_SIGNATURE = OLD_SIGNATURE[:-1] + ", text, text)"


def _previous_settle() -> str:
    path = Path(__file__).with_name("2026-11-20-2330_usage_rollups.py")
    spec = importlib.util.spec_from_file_location("_usage_rollups", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    body: str = module.SETTLE_WITH_ROLLUP
    return body


def _new_settle() -> str:
    body = _previous_settle()
    assert body.count(_OLD_ARGS) == 1 and body.count(_OLD_SET) == 1
    return body.replace(_OLD_ARGS, _NEW_ARGS).replace(_OLD_SET, _NEW_SET)


def upgrade() -> None:
    op.create_table(
        "model_prices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("aliases", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        *(
            sa.Column(name, _MONEY, nullable=False)
            for name in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
        ),
        sa.Column(
            "modifiers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_prices")),
        sa.UniqueConstraint("model", "effective_from", name=op.f("uq_model_prices_model")),
    )
    op.create_table(
        "price_recosts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("from_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("to_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("before_usd", _MONEY, nullable=False),
        sa.Column("after_usd", _MONEY, nullable=False),
        sa.Column("versions", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_recosts")),
    )
    op.add_column("usage_ledger", sa.Column("speed", sa.Text(), nullable=True))
    op.add_column("usage_ledger", sa.Column("inference_geo", sa.Text(), nullable=True))
    op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
    op.execute(_new_settle())


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {NEW_SIGNATURE}")
    op.execute(_previous_settle())
    op.drop_column("usage_ledger", "inference_geo")
    op.drop_column("usage_ledger", "speed")
    op.drop_table("price_recosts")
    op.drop_table("model_prices")
