"""`tollgate admin-token create NAME [--role admin|viewer] | list | revoke TOKEN_ID`: named admin
tokens from the command line. `create` prints the token once; only its hash is stored. Every
change is recorded in the audit log (actor `cli:<os user>`) in the same transaction."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import cli_actor, record
from api.auth.admin_tokens import TokenInfo, create_token, list_tokens, revoke_token
from api.cli_support import parse_uuid, run_with_session
from api.settings import Settings

Sub = Any  # argparse's _SubParsersAction is private


def register(sub: Sub) -> None:
    tokens = sub.add_parser("admin-token", help="named admin tokens").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    create = tokens.add_parser("create", help="create a named admin token; printed once")
    create.add_argument("name")
    create.add_argument("--role", choices=("admin", "viewer"), default="admin")
    create.set_defaults(handler=_create, needs_settings=True)
    ls = tokens.add_parser("list", help="list admin tokens (never the tokens themselves)")
    ls.set_defaults(handler=_list, needs_settings=True)
    revoke = tokens.add_parser("revoke", help="revoke an admin token at once")
    revoke.add_argument("token_id", type=parse_uuid, metavar="TOKEN_ID")
    revoke.set_defaults(handler=_revoke, needs_settings=True)


def _create(args: argparse.Namespace, settings: Settings) -> None:
    async def work(session: AsyncSession) -> tuple[TokenInfo, str]:
        info, token = await create_token(session, args.name, args.role)
        actor = cli_actor()
        await record(
            session, actor, "admin_token.create", "admin_token", info.id, None, info.snapshot()
        )
        return info, token

    info, token = run_with_session(settings, work)
    print(f"token id: {info.id}")
    print(f"name:     {info.name} ({info.role})")
    print(f"token:    {token}")
    print("Store the token now: it is not shown again.")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def _list(args: argparse.Namespace, settings: Settings) -> None:
    tokens = run_with_session(settings, list_tokens)
    if not tokens:
        print("no admin tokens (TOLLGATE_ADMIN_TOKEN is the bootstrap token)")
        return
    rows = [("ID", "NAME", "ROLE", "PREFIX", "CREATED", "REVOKED")] + [
        (str(t.id), t.name, t.role, t.prefix, _when(t.created_at), _when(t.revoked_at))
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _revoke(args: argparse.Namespace, settings: Settings) -> None:
    token_id: uuid.UUID = args.token_id

    async def work(session: AsyncSession) -> None:
        before, after = await revoke_token(session, token_id)
        await record(
            session,
            cli_actor(),
            "admin_token.revoke",
            "admin_token",
            token_id,
            before.snapshot(),
            after.snapshot(),
        )

    run_with_session(settings, work)
    print(f"revoked admin token {token_id}")
