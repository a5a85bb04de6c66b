"""Routes of the simulated Message Batches and Files APIs (raw ASGI, like the Messages route).

`POST/GET /v1/messages/batches`, `GET /v1/messages/batches/{id}`, `GET …/{id}/results`,
`POST …/{id}/cancel`, `DELETE …/{id}`; `POST/GET /v1/files`, `GET/DELETE /v1/files/{id}`,
`GET /v1/files/{id}/content`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from api.pagination import PageError
from api.simulator.batches import BatchError, BatchKnobs, MakeMessage, SimBatches
from api.simulator.config import SimConfig
from api.simulator.files import FileError, SimFiles

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

BATCHES_PATH = "/v1/messages/batches"
FILES_PATH = "/v1/files"
_BATCH = re.compile(r"^/v1/messages/batches/([^/]+)(/results|/cancel)?$")
_FILE = re.compile(r"^/v1/files/([^/]+)(/content)?$")


class ResourceError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def is_resource_path(path: str) -> bool:
    return path.startswith((BATCHES_PATH, FILES_PATH))


def batch_knobs(k: SimConfig) -> BatchKnobs:
    return BatchKnobs(
        duration_s=k.batch_duration_ms / 1000,
        cancel_s=k.batch_cancel_ms / 1000,
        errored=re.compile(k.batch_errored) if k.batch_errored else None,
        expired=re.compile(k.batch_expired) if k.batch_expired else None,
        stall_after=k.results_stall_after,
    )


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send(
    send: Send, status: int, body: bytes, request_id: bytes, content_type: bytes
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"request-id", request_id),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _json(send: Send, payload: object, request_id: bytes) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await _send(send, 200, body, request_id, b"application/json")


class SimResources:
    """The batches and files of one simulator, and their routes."""

    def __init__(self, make_message: MakeMessage) -> None:
        self.batches = SimBatches(make_message)
        self.files = SimFiles()

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, knobs: SimConfig, request_id: bytes
    ) -> None:
        try:
            await self._route(scope, receive, send, knobs, request_id)
        except (BatchError, FileError) as error:
            raise ResourceError(error.status, error.message) from None
        except PageError as error:
            raise ResourceError(400, str(error)) from None

    async def _route(
        self, scope: Scope, receive: Receive, send: Send, knobs: SimConfig, rid: bytes
    ) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        base_url = f"{scope.get('scheme', 'http')}://{_header(scope, b'host')}"
        if path == BATCHES_PATH:
            if method == "POST":
                body = _parse_json(await _read(receive))
                batch = self.batches.create(body, batch_knobs(knobs))
                return await _json(send, self.batches.to_json(batch, base_url), rid)
            if method == "GET":
                return await _json(send, self.batches.listing(query, base_url), rid)
            raise ResourceError(405, f"Method {method} not allowed")
        if path == FILES_PATH:
            if method == "POST":
                content_type = _header(scope, b"content-type")
                uploaded = self.files.upload(
                    await _read(receive), content_type, downloadable=knobs.file_downloadable
                )
                return await _json(send, uploaded.to_json(), rid)
            if method == "GET":
                return await _json(send, self.files.listing(query), rid)
            raise ResourceError(405, f"Method {method} not allowed")
        if match := _BATCH.match(path):
            return await self._batch(match[1], match[2], method, base_url, receive, send, rid)
        if match := _FILE.match(path):
            return await self._file(match[1], match[2], method, send, rid)
        raise ResourceError(404, f"Not found: {path}")

    async def _batch(
        self,
        batch_id: str,
        action: str | None,
        method: str,
        base_url: str,
        receive: Receive,
        send: Send,
        rid: bytes,
    ) -> None:
        if action is None and method == "GET":
            return await _json(
                send, self.batches.to_json(self.batches.get(batch_id), base_url), rid
            )
        if action is None and method == "DELETE":
            return await _json(send, self.batches.delete(batch_id), rid)
        if action == "/cancel" and method == "POST":
            batch = self.batches.cancel(batch_id)
            return await _json(send, self.batches.to_json(batch, base_url), rid)
        if action == "/results" and method == "GET":
            return await self._results(batch_id, receive, send, rid)
        raise ResourceError(405, f"Method {method} not allowed")

    async def _results(self, batch_id: str, receive: Receive, send: Send, rid: bytes) -> None:
        batch, lines, stall = self.batches.result_lines(batch_id)
        headers = [(b"content-type", b"application/binary"), (b"request-id", rid)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, line in enumerate(lines):
            if stall is not None and i >= stall:
                await _wait_disconnect(receive)
                return
            await send({"type": "http.response.body", "body": line, "more_body": True})
            batch.lines_served += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _file(
        self, file_id: str, action: str | None, method: str, send: Send, rid: bytes
    ) -> None:
        if action is None and method == "GET":
            return await _json(send, self.files.get(file_id).to_json(), rid)
        if action is None and method == "DELETE":
            return await _json(send, self.files.delete(file_id), rid)
        if action == "/content" and method == "GET":
            found = self.files.content(file_id)
            return await _send(send, 200, found.content, rid, found.mime_type.encode("latin-1"))
        raise ResourceError(405, f"Method {method} not allowed")


def _parse_json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ResourceError(400, "Request body is not valid JSON") from None
