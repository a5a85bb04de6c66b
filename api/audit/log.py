"""Writing the audit log: one row per change, inserted on the connection (or session) that
makes the change, so the entry commits or rolls back with it."""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.audit.models import AuditEntry

Role = Literal["admin", "viewer"]
Snapshot = dict[str, Any] | None  # JSON-ready: what the target looked like (None: nothing)


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a named admin token, the bootstrap token or a CLI user."""

    name: str  # the token's name, "bootstrap", or "cli:<os user>"
    role: Role
    request_id: str | None = None  # the HTTP request's id; None from the CLI
    token_id: uuid.UUID | None = None  # the named token's id; None for bootstrap and CLI

    @property
    def can_write(self) -> bool:
        return self.role == "admin"


def cli_actor() -> Actor:
    """The CLI acts with the database's credentials; the log names the OS user running it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(name=f"cli:{user}", role="admin")


async def record(
    db: AsyncSession | AsyncConnection,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: object,
    before: Snapshot = None,
    after: Snapshot = None,
) -> None:
    """Append one entry, in `db`'s current transaction."""
    await db.execute(
        insert(AuditEntry).values(
            actor=actor.name,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            before=before,
            after=after,
            request_id=actor.request_id,
        )
    )
