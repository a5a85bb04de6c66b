"""The streaming `chat.completion.chunk` response: the metered upstream stream, translated chunk
by chunk as it arrives, with a watcher on the client connection so a hang-up is noticed even
while no bytes flow (then the metered call drains or closes the upstream, as configured, and
settles the ledger row exactly as for /v1/messages)."""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from api.openai.stream import ChunkTranslator
from api.proxy.stream import MeteredStream

STREAM_HEADERS = {
    "cache-control": "no-cache, no-transform",
    "x-accel-buffering": "no",
    "content-type": "text/event-stream; charset=utf-8",
}


class ChunkStreamResponse(Response):
    def __init__(
        self, call: MeteredStream, translator: ChunkTranslator, headers: dict[str, str]
    ) -> None:
        # Deliberately not Response.__init__: no body, no content-length; we stream ourselves.
        self.call = call
        self.translator = translator
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (k.encode(), v.encode()) for k, v in {**STREAM_HEADERS, **headers}.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        translate = self.translator.feed

        async def send_chunk(chunk: bytes) -> None:
            out = translate(chunk)
            if not out:
                return
            try:
                await send({"type": "http.response.body", "body": out, "more_body": True})
            except OSError:  # servers other than uvicorn may raise once the client is gone
                self.call.disconnect()

        watcher = asyncio.create_task(self._watch(receive))
        try:
            self.call.start(send_chunk)
            await self.call.finished()
            if not self.call.client_gone:
                tail = self.translator.finish()
                await send({"type": "http.response.body", "body": tail, "more_body": False})
        finally:
            watcher.cancel()

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.call.disconnect()
                return
