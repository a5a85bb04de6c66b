"""unique tenant names: `find_tenant_by_name` is unambiguous, and a duplicate is refused (409).

Existing duplicates are kept, renamed: the oldest tenant of each name (by created_at, then id)
keeps it, the others become "NAME (2)", "NAME (3)", … (skipping any name already taken).
Downgrade drops the constraint and leaves the names as they are.

Revision ID: a1c3e5f7b9d2
Revises: c4e6a8f0b2d4
Create Date: 2026-11-30 16:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a1c3e5f7b9d2"
down_revision: str | None = "c4e6a8f0b2d4"  # after void_orphans (linear history)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAME_DUPLICATES = """
DO $$
DECLARE
    dup record;
    candidate text;
    n integer;
BEGIN
    LOCK TABLE tenants IN SHARE ROW EXCLUSIVE MODE;  -- no new tenant between dedupe and index
    FOR dup IN
        SELECT id, name FROM (
            SELECT id, name,
                   row_number() OVER (PARTITION BY name ORDER BY created_at, id) AS nth
            FROM tenants
        ) ranked
        WHERE nth > 1
        ORDER BY name, nth
    LOOP
        n := 2;
        LOOP
            candidate := dup.name || ' (' || n || ')';
            EXIT WHEN NOT EXISTS (SELECT 1 FROM tenants WHERE name = candidate);
            n := n + 1;
        END LOOP;
        UPDATE tenants SET name = candidate, updated_at = now() WHERE id = dup.id;
    END LOOP;
END
$$;
"""


def upgrade() -> None:
    op.execute(RENAME_DUPLICATES)
    op.create_unique_constraint("uq_tenants_name", "tenants", ["name"])


def downgrade() -> None:
    op.drop_constraint("uq_tenants_name", "tenants", type_="unique")
