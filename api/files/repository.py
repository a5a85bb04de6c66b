"""SQL of the files feature; every query takes the authenticated tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_USED = text(
    "SELECT COALESCE(sum(size_bytes), 0) FROM files "
    "WHERE tenant_id = :tenant AND deleted_at IS NULL"
)
_INSERT = text(
    """
    INSERT INTO files (id, tenant_id, api_key_id, filename, mime_type, size_bytes, downloadable,
                       created_at)
    VALUES (:id, :tenant, :key, :filename, :mime_type, :size_bytes, :downloadable, :created_at)
    """
)
_GET = text("SELECT * FROM files WHERE tenant_id = :tenant AND id = :id AND deleted_at IS NULL")
_LIST = text(
    """
    SELECT * FROM files WHERE tenant_id = :tenant AND deleted_at IS NULL
    ORDER BY created_at DESC, id DESC
    """
)
_DELETE = text("UPDATE files SET deleted_at = now() WHERE tenant_id = :tenant AND id = :id")


@dataclass(frozen=True)
class FileRow:
    id: str
    filename: str | None
    mime_type: str | None
    size_bytes: int
    downloadable: bool | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "downloadable": self.downloadable,
        }


def _row(found: Any) -> FileRow:
    return FileRow(
        found.id,
        found.filename,
        found.mime_type,
        found.size_bytes,
        found.downloadable,
        found.created_at,
    )


async def used_bytes(conn: AsyncConnection, tenant_id: uuid.UUID) -> int:
    return int((await conn.execute(_USED, {"tenant": tenant_id})).scalar_one())


async def lock_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> None:
    """Serialise this tenant's quota checks (until the transaction ends)."""
    await conn.execute(_LOCK, {"key": f"files:{tenant_id}"})


async def insert(
    conn: AsyncConnection, tenant_id: uuid.UUID, key_id: uuid.UUID, meta: FileRow
) -> None:
    await conn.execute(
        _INSERT,
        {
            "id": meta.id,
            "tenant": tenant_id,
            "key": key_id,
            "filename": meta.filename,
            "mime_type": meta.mime_type,
            "size_bytes": meta.size_bytes,
            "downloadable": meta.downloadable,
            "created_at": meta.created_at,
        },
    )


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, file_id: str) -> FileRow | None:
    found = (await conn.execute(_GET, {"tenant": tenant_id, "id": file_id})).first()
    return None if found is None else _row(found)


async def list_all(conn: AsyncConnection, tenant_id: uuid.UUID) -> list[FileRow]:
    return [_row(r) for r in await conn.execute(_LIST, {"tenant": tenant_id})]


async def mark_deleted(conn: AsyncConnection, tenant_id: uuid.UUID, file_id: str) -> None:
    await conn.execute(_DELETE, {"tenant": tenant_id, "id": file_id})
