"""Files: upload streamed to the upstream (size limit and per-tenant storage quota enforced while
the bytes flow), and ownership recorded, so a tenant only ever sees and uses its own files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import BadGateway, NotFound, RequestTooLarge
from api.files import repository
from api.files.repository import FileRow
from api.keys.principal import Principal
from api.passthrough import Refused, read_json
from api.upstream_client import UpstreamClient

FILES_PATH = "/v1/files"


class QuotaExceeded(RequestTooLarge):
    pass


class _Limited:
    """The request body, cut off (and flagged) once it goes over `limit` bytes. The SDK turns
    an exception raised inside a request body into a connection error, hence the flag."""

    def __init__(self, chunks: AsyncIterator[bytes], limit: int) -> None:
        self._chunks = chunks
        self._limit = limit
        self.exceeded = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._chunks:
            size += len(chunk)
            if size > self._limit:
                self.exceeded = True
                raise RequestTooLarge("too large")
            yield chunk


async def owned(engine: AsyncEngine, principal: Principal, file_id: str) -> FileRow:
    """The caller's file, or 404 (whether it belongs to someone else or does not exist)."""
    async with engine.connect() as conn:
        found = await repository.get(conn, principal.tenant_id, file_id)
    if found is None:
        raise NotFound(f"file {file_id!r} not found")
    return found


def _parse_meta(body: dict[str, object]) -> FileRow:
    try:
        created = datetime.fromisoformat(str(body["created_at"]).replace("Z", "+00:00"))
        size = body["size_bytes"]
        if not isinstance(size, int):
            raise TypeError
        downloadable = body.get("downloadable")
        return FileRow(
            id=str(body["id"]),
            filename=str(body.get("filename")) if body.get("filename") is not None else None,
            mime_type=str(body.get("mime_type")) if body.get("mime_type") is not None else None,
            size_bytes=size,
            downloadable=downloadable if isinstance(downloadable, bool) else None,
            created_at=created.astimezone(UTC),
        )
    except (KeyError, TypeError, ValueError):
        raise BadGateway("the upstream sent an unexpected file object") from None


async def upload(
    engine: AsyncEngine,
    upstream: UpstreamClient,
    principal: Principal,
    body: AsyncIterator[bytes],
    headers: dict[str, str],
    *,
    declared: int | None,
    max_bytes: int,
    quota_bytes: int,
) -> dict[str, object] | Refused:
    """Stream the multipart body upstream and record the new file as the caller's."""
    async with engine.connect() as conn:
        used = await repository.used_bytes(conn, principal.tenant_id)
    room = quota_bytes - used
    if declared is not None and declared > max_bytes:
        raise RequestTooLarge(f"files are limited to {max_bytes} bytes")
    if declared is not None and declared > room:
        raise QuotaExceeded(f"storage quota of {quota_bytes} bytes exceeded")
    limit = min(max_bytes, room)
    stream = _Limited(body, limit)
    try:
        created = await read_json(upstream, "POST", FILES_PATH, headers=headers, content=stream)
    except BadGateway:
        if stream.exceeded:
            raise RequestTooLarge(
                f"the upload is over the size limit or the storage quota ({limit} bytes left)"
            ) from None
        raise
    if isinstance(created, Refused):
        return created
    meta = _parse_meta(created)
    async with engine.begin() as conn:
        await repository.lock_tenant(conn, principal.tenant_id)
        used = await repository.used_bytes(conn, principal.tenant_id)
        over = used + meta.size_bytes > quota_bytes
        if not over:
            await repository.insert(conn, principal.tenant_id, principal.key_id, meta)
    if over:  # a concurrent upload took the room: undo ours upstream
        await read_json(upstream, "DELETE", f"{FILES_PATH}/{meta.id}", headers=headers)
        raise QuotaExceeded(f"storage quota of {quota_bytes} bytes exceeded")
    return created
