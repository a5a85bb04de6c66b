"""Reading a request body with a size limit, for every endpoint that takes raw bytes."""

from __future__ import annotations

from fastapi import Request

from api.errors import RequestTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing anything over `limit` bytes without reading all of it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
