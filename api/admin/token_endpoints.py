"""`/admin/tokens`: named admin tokens. `POST` creates one (the token is in the answer, once),
`GET` lists them (never the token), `DELETE /admin/tokens/{id}` revokes one at once. Each change
is recorded in the audit log in its own transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from api.admin.schemas import Label, _Input
from api.audit import record
from api.auth.admin import Admin, admin_body, no_content, require_admin
from api.auth.admin_tokens import TokenInfo, create_token, list_tokens, revoke_token
from api.http.jsonbody import body_schema
from api.state import State

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class TokenCreate(_Input):
    name: Label
    role: Literal["admin", "viewer"] = "admin"


class TokenOut(BaseModel):
    id: uuid.UUID
    name: str
    role: Literal["admin", "viewer"]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, info: TokenInfo) -> TokenOut:
        return cls(**vars(info))


class TokenCreated(TokenOut):
    token: str  # shown once


class TokenList(BaseModel):
    data: list[TokenOut]


@router.post("/tokens", status_code=201, openapi_extra=body_schema(TokenCreate))
async def post_token(
    body: Annotated[TokenCreate, admin_body(TokenCreate)], state: State, admin: Admin
) -> TokenCreated:
    async with state.sessions() as session, session.begin():
        info, token = await create_token(session, body.name, body.role)
        await record(
            session, admin, "admin_token.create", "admin_token", info.id, None, info.snapshot()
        )
    return TokenCreated(**vars(info), token=token)


@router.get("/tokens")
async def get_tokens(state: State) -> TokenList:
    async with state.sessions() as session, session.begin():
        tokens = await list_tokens(session)
    return TokenList(data=[TokenOut.of(t) for t in tokens])


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
async def delete_token(token_id: uuid.UUID, state: State, admin: Admin) -> Response:
    """204 when revoked now; 404 unknown; 409 when it was revoked before."""
    async with state.sessions() as session, session.begin():
        before, after = await revoke_token(session, token_id)
        await record(
            session,
            admin,
            "admin_token.revoke",
            "admin_token",
            token_id,
            before.snapshot(),
            after.snapshot(),
        )
    return no_content(admin)
