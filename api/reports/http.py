"""HTTP answers for reports, shared by `/admin/usage` and the tenant's `/v1/usage`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from starlette.responses import StreamingResponse

from api.reports.query import ReportQuery

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


async def csv_response(
    query: ReportQuery, stream: AsyncGenerator[bytes, None]
) -> StreamingResponse:
    """Stream `stream` as a CSV download. Its first chunk is awaited here, before the response
    starts, so a failure to start the export is still an ordinary error response."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        first = b""
    except BaseException:
        await stream.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    return StreamingResponse(
        body(),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "content-disposition": f'attachment; filename="{csv_filename(query)}"',
            "cache-control": "no-store",
        },
    )


def csv_filename(query: ReportQuery) -> str:
    parts = ["usage"]
    if query.group_by is not None:
        parts.append(f"by-{query.group_by.value}")
    for instant in (query.window.start, query.window.end):
        if instant is not None:
            parts.append(instant.strftime("%Y%m%dT%H%M%SZ").replace("T000000Z", ""))
    return "-".join(parts) + ".csv"
