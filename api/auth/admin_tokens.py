"""Named admin tokens: created (printed once), listed, revoked, and looked up by hash. Only a
SHA-256 of each token is stored (256 random bits need no slow hash), like API keys. Services
flush; the caller commits, and records the change in the audit log in the same transaction."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.auth.models import AdminToken
from api.errors import Conflict, NotFound
from api.inputs import MAX_NAME_LENGTH, check_text, clip

TOKEN_PREFIX = "tg_admin_"  # noqa: S105 - a prefix, not a secret
_DISPLAY_CHARS = 6
Role = Literal["admin", "viewer"]


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode(errors="surrogatepass")).digest()


def looks_like_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and 40 <= len(token) <= 80 and token.isascii()


@dataclass(frozen=True)
class TokenInfo:
    """What a token list shows: never the token or its hash."""

    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: AdminToken) -> TokenInfo:
        role: Role = "viewer" if row.role == "viewer" else "admin"
        return cls(row.id, row.name, role, row.prefix, row.created_at, row.revoked_at)

    def snapshot(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "name": self.name,
            "role": self.role,
            "prefix": self.prefix,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


async def create_token(session: AsyncSession, name: str, role: Role) -> tuple[TokenInfo, str]:
    """A new token (409 if the name is taken); returns it with its plaintext, shown once."""
    name = check_text(name.strip(), "name", MAX_NAME_LENGTH)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    inserted = await session.execute(
        insert(AdminToken)
        .values(
            id=uuid.uuid4(),
            name=name,
            role=role,
            token_hash=hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + _DISPLAY_CHARS],
        )
        .on_conflict_do_nothing(index_elements=[AdminToken.name])
        .returning(AdminToken)
    )
    row = inserted.scalar_one_or_none()
    if row is None:
        raise Conflict(f"name: an admin token named {clip(name)} already exists")
    return TokenInfo.of(row), token


async def list_tokens(session: AsyncSession) -> list[TokenInfo]:
    rows = await session.scalars(select(AdminToken).order_by(AdminToken.created_at, AdminToken.id))
    return [TokenInfo.of(row) for row in rows]


async def revoke_token(session: AsyncSession, token_id: uuid.UUID) -> tuple[TokenInfo, TokenInfo]:
    """Revoke at once: (before, after). 404 unknown, 409 revoked before."""
    before = await session.get(AdminToken, token_id, with_for_update=True)
    if before is None:
        raise NotFound(f"admin token {token_id} not found")
    if before.revoked_at is not None:
        raise Conflict(f"admin token {token_id} was already revoked")
    old = TokenInfo.of(before)
    await session.execute(
        update(AdminToken).where(AdminToken.id == token_id).values(revoked_at=func.now())
    )
    await session.refresh(before)
    return old, TokenInfo.of(before)


async def find_token(conn: AsyncConnection, token: str) -> TokenInfo | None:
    """The live (not revoked) token with this plaintext, if any."""
    stmt = select(
        AdminToken.id, AdminToken.name, AdminToken.role, AdminToken.prefix, AdminToken.created_at
    ).where(AdminToken.token_hash == hash_token(token), AdminToken.revoked_at.is_(None))
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    role: Role = "viewer" if row.role == "viewer" else "admin"
    return TokenInfo(row.id, row.name, role, row.prefix, row.created_at, None)
