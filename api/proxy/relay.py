"""The /v1/messages streaming response: upstream bytes to the client as they arrive, with a
watcher on the client connection so a hang-up is noticed even while no bytes flow."""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.proxy.stream import MeteredStream

STREAM_HEADERS = {
    "cache-control": "no-cache, no-transform",
    "x-accel-buffering": "no",
    "content-type": "text/event-stream; charset=utf-8",
}


class RelayResponse(Response):
    def __init__(self, call: MeteredStream, headers: dict[str, str]) -> None:
        # Deliberately not Response.__init__: no body, no content-length; we stream ourselves.
        self.call = call
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (k.encode(), v.encode()) for k, v in {**STREAM_HEADERS, **headers}.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def send_chunk(chunk: bytes) -> None:
            try:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except OSError:  # servers other than uvicorn may raise once the client is gone
                self.call.disconnect()

        watcher = asyncio.create_task(self._watch(receive))
        try:
            self.call.start(send_chunk)  # the pump writes to the socket itself: no queue
            await self.call.finished()
            if not self.call.client_gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.call.disconnect()
                return
