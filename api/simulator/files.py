"""Simulated Files API: multipart upload, list, metadata, content download, delete (in memory).

The upload body is `multipart/form-data` with a `file` part (its filename and content type
become the file's `filename` and `mime_type`); other parts (`purpose`, `expires_in_seconds`)
are accepted and ignored.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.pagination import paginate


class FileError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SimFile:
    id: str
    filename: str
    mime_type: str
    content: bytes
    created: float
    downloadable: bool

    def to_json(self) -> dict[str, Any]:
        created = datetime.fromtimestamp(self.created, UTC).isoformat().replace("+00:00", "Z")
        return {
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": len(self.content),
            "created_at": created,
            "downloadable": self.downloadable,
        }


def _boundary(content_type: str) -> bytes:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    raise FileError(400, "Content-Type must be multipart/form-data with a boundary")


def _disposition(headers: dict[str, str]) -> dict[str, str]:
    out = {}
    for item in headers.get("content-disposition", "").split(";")[1:]:
        name, _, value = item.strip().partition("=")
        out[name.lower()] = value.strip('"')
    return out


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[dict[str, str], bytes]]:
    """name -> (part headers incl. `filename`, content). Enough multipart for the SDKs."""
    delimiter = b"--" + _boundary(content_type)
    parts: dict[str, tuple[dict[str, str], bytes]] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise FileError(400, "malformed multipart body")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = _disposition(headers)
        if "name" in disposition:
            meta = {"content-type": headers.get("content-type", ""), **disposition}
            parts[disposition["name"]] = (meta, content.removesuffix(b"\r\n"))
    return parts


class SimFiles:
    def __init__(self) -> None:
        self._files: dict[str, SimFile] = {}

    def get(self, file_id: str) -> SimFile:
        found = self._files.get(file_id)
        if found is None:
            raise FileError(404, f"File not found: {file_id}")
        return found

    def upload(self, body: bytes, content_type: str, *, downloadable: bool) -> SimFile:
        part = parse_multipart(body, content_type).get("file")
        if part is None:
            raise FileError(400, "file: Field required")
        meta, content = part
        created = SimFile(
            id=f"file_sim_{secrets.token_hex(12)}",
            filename=meta.get("filename") or "upload",
            mime_type=meta.get("content-type") or "application/octet-stream",
            content=content,
            created=time.time(),
            downloadable=downloadable,
        )
        self._files[created.id] = created
        return created

    def content(self, file_id: str) -> SimFile:
        found = self.get(file_id)
        if not found.downloadable:
            raise FileError(400, f"File {file_id} is not downloadable")
        return found

    def delete(self, file_id: str) -> dict[str, str]:
        self.get(file_id)
        del self._files[file_id]
        return {"id": file_id, "type": "file_deleted"}

    def listing(self, query: Mapping[str, str]) -> dict[str, Any]:
        newest = sorted(self._files.values(), key=lambda f: f.created, reverse=True)
        return paginate([f.to_json() for f in newest], query, cursor=True)
