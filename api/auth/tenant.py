"""Tenant authentication as a typed dependency: `x-api-key` or `Authorization: Bearer`.

Lookups are cached per process for a short TTL (TOLLGATE_KEY_CACHE_TTL_S, default 2 s), so a
revoked key stops working everywhere within that time. Every failure says the same thing, so a
caller learns nothing about whether a key exists — except an expired key, which is told when it
expired (401). A revocation scheduled for later (rotation) takes effect at its time, checked on
every request. Each accepted key is noted for `last_used_at`, written in batches
(api/keys/usage.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text

from api.db.errors import DB_ERRORS, DatabaseDown, unavailable
from api.errors import AuthenticationFailed, PermissionDenied
from api.http.throttle import Throttle, client_address
from api.keys.principal import KeyEntry, Principal
from api.keys.secrets import display_prefix, hash_key, looks_like_key
from api.state import AppState, State

_BAD_KEY = "invalid x-api-key"

_LOOKUP = text(
    """
    SELECT k.id AS key_id, k.tenant_id, k.end_user_id, u.external_id AS bound_user,
           k.revoked_at IS NOT NULL AND k.revoked_at <= now() AS revoked, k.revoked_at,
           k.expires_at, k.allowed_models AS key_models, k.monthly_budget_usd AS key_budget,
           t.status AS tenant_status,
           t.plan_code, p.allowed_models, t.billing_period_start, t.billing_period_end
    FROM api_keys k
    JOIN tenants t ON t.id = k.tenant_id
    JOIN plans p ON p.code = t.plan_code
    LEFT JOIN end_users u ON u.id = k.end_user_id
    WHERE k.key_hash = :key_hash
    """
)


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def _load(state: AppState, key_hash: bytes) -> KeyEntry:
    try:
        async with state.engine.connect() as conn:
            row = (await conn.execute(_LOOKUP, {"key_hash": key_hash})).mappings().first()
    except DB_ERRORS as exc:
        raise unavailable(exc) from None
    expires = time.monotonic() + state.key_cache.ttl_s
    if row is None or row["revoked"]:
        return KeyEntry(None, False, expires)
    allowed, key_models = row["allowed_models"], row["key_models"]
    principal = Principal(
        tenant_id=row["tenant_id"],
        key_id=row["key_id"],
        plan_code=row["plan_code"],
        allowed_models=tuple(allowed) if allowed is not None else None,
        bound_user_id=row["end_user_id"],
        bound_user=row["bound_user"],
        billing_period=(
            (row["billing_period_start"], row["billing_period_end"])
            if row["billing_period_start"] is not None and row["billing_period_end"] is not None
            else None
        ),
        key_models=tuple(key_models) if key_models is not None else None,
        key_budget_usd=row["key_budget"],
        expires_at=row["expires_at"],
        revoke_at=row["revoked_at"],  # not yet past (else `revoked` above)
    )
    return KeyEntry(principal, row["tenant_status"] != "active", expires)


async def authenticate(request: Request, state: State, throttle: Throttle) -> Principal:
    address = "ip:" + client_address(request)
    key = presented_key(request)
    if key is None:
        throttle.check(address)
        throttle.failed(address)
        raise AuthenticationFailed("x-api-key header is required")
    subjects = (address, "key:" + display_prefix(key))
    if not looks_like_key(key):
        throttle.check(*subjects)
        throttle.failed(*subjects)
        raise AuthenticationFailed(_BAD_KEY)
    key_hash = hash_key(key)
    entry = state.key_cache.get(key_hash)
    if entry is None or entry.principal is None:
        # A key not known good: refused without a lookup while its address or prefix is
        # throttled; a cached good key is never held up by someone else's failures.
        throttle.check(*subjects)
    if entry is None:
        try:
            entry = await state.key_cache.load(key_hash, lambda: _load(state, key_hash))
        except DatabaseDown:
            # Postgres is unreachable: a key known good a moment ago still is (nothing can
            # revoke it meanwhile), so a request its tenant's lease covers is not refused.
            entry = state.key_cache.stale_known(key_hash)
            if entry is None:
                raise
    elif entry.principal is not None:
        state.key_cache.refresh_ahead(key_hash, entry, lambda: _load(state, key_hash))
    if entry.principal is None:
        throttle.failed(*subjects)
        raise AuthenticationFailed(_BAD_KEY)
    principal = entry.principal
    if principal.expires_at is not None or principal.revoke_at is not None:
        now = datetime.now(UTC)
        if principal.revoke_at is not None and now >= principal.revoke_at:
            throttle.failed(*subjects)
            raise AuthenticationFailed(_BAD_KEY)  # revoked by now, like any revoked key
        if principal.expires_at is not None and now >= principal.expires_at:
            when = principal.expires_at.astimezone(UTC).isoformat(timespec="seconds")
            raise AuthenticationFailed(f"this API key expired at {when}")
    if entry.suspended:
        raise PermissionDenied("this tenant is suspended")
    state.key_usage.touch(principal.key_id)
    return principal


Caller = Annotated[Principal, Depends(authenticate)]
