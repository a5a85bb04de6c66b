"""Drop tollgate_lease_acquire and tollgate_lease_permits: the request path takes money, slots
and rpm permits in one statement (tollgate_lease_refill), and the model-based invariant walk,
the kill -9 test and bench/leases_bench.py now use it too, so nothing calls them any more.
The downgrade recreates both as their migrations defined them.

Revision ID: c5e6f7a8b9d0
Revises: b4d5e6f7a8c9
Create Date: 2026-11-30 19:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "c5e6f7a8b9d0"
down_revision: str | None = "b4d5e6f7a8c9"  # after lease_refill (linear history)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(filename: str) -> ModuleType:
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute(
        "DROP FUNCTION tollgate_lease_acquire(uuid, boolean, text, uuid, uuid, timestamptz, "
        "timestamptz, numeric, numeric, integer, double precision)"
    )
    op.execute(
        "DROP FUNCTION tollgate_lease_permits(uuid, uuid, timestamptz, timestamptz, integer, "
        "double precision)"
    )


def downgrade() -> None:
    op.execute(_migration("2026-11-30-1700_leases.py").TOLLGATE_LEASE_ACQUIRE)
    op.execute(_migration("2026-11-30-1810_lease_permits.py").LEASE_PERMITS)
