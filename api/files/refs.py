"""Which files a Messages request names, and the check that the caller owns every one of them.

A file can be named by a `document` or `image` block whose `source` is `{"type": "file",
"file_id": …}` (anywhere, also inside tool results), and by a `container_upload` block's
`file_id`. The whole body is walked, so no nesting hides a reference; the walk is skipped when
the raw bytes cannot contain one (no `file_id` and no JSON `\\u` escape)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import NotFound

_OWNED = text(
    "SELECT id FROM files WHERE tenant_id = :tenant AND id = ANY(:ids) AND deleted_at IS NULL"
)


def might_name_files(raw: bytes) -> bool:
    return b"file_id" in raw or b"\\u" in raw


def file_ids_in(node: object) -> set[str]:
    """Every file id `node` (a parsed request body, or part of one) refers to."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            kind = item.get("type")
            source = item.get("source")
            if kind in ("document", "image") and isinstance(source, dict):
                if source.get("type") == "file":
                    found.add(str(source.get("file_id")))
            elif kind == "container_upload":
                found.add(str(item.get("file_id")))
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
    return found


async def check_file_refs(engine: AsyncEngine, tenant_id: uuid.UUID, ids: Iterable[str]) -> None:
    """404 `not_found_error` naming the first file id the tenant does not own."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    async with engine.connect() as conn:
        owned = set((await conn.execute(_OWNED, {"tenant": tenant_id, "ids": wanted})).scalars())
    for file_id in wanted:
        if file_id not in owned:
            raise NotFound(f"file_id: {file_id!r} not found")
