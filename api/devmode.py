"""What `tollgate dev` adds for a newcomer: a demo tenant and key, an admin token for the
dashboard, and a banner that says where everything is. Both secrets are kept in the data dir
(mode 0600, never in the database) so a restarted `tollgate dev` prints the same ones."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.cli_support import run_with_session
from api.db.engine import DatabaseLocation
from api.settings import Settings, UpstreamMode


@dataclass(frozen=True)
class Demo:
    tenant_id: uuid.UUID
    key: str


def _read_secret(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


def with_admin_token(settings: Settings) -> Settings:
    """TOLLGATE_ADMIN_TOKEN when set; else a dev token, generated once and kept."""
    if settings.admin_token is not None:
        return settings
    path = settings.data_dir / "admin-token"
    token = _read_secret(path)
    if token is None:
        token = "tg_admin_" + secrets.token_urlsafe(24)
        _write_secret(path, token)
    return settings.model_copy(update={"admin_token": SecretStr(token)})


async def _ensure_demo(session: AsyncSession, saved_key: str | None) -> Demo:
    """The `demo` tenant and a usable key for it: `saved_key` if it still works, else a new
    one (the caller saves it)."""
    from api.db.models import ApiKey
    from api.keys.secrets import hash_key
    from api.keys.service import create_key
    from api.tenants.service import create_tenant, find_tenant_by_name

    tenant = await find_tenant_by_name(session, "demo") or await create_tenant(
        session, "demo", "pro"
    )
    if saved_key is not None:
        row = await session.execute(
            select(ApiKey.id).where(
                ApiKey.key_hash == hash_key(saved_key),
                ApiKey.tenant_id == tenant.id,
                ApiKey.revoked_at.is_(None),
            )
        )
        if row.scalar_one_or_none() is not None:
            return Demo(tenant.id, saved_key)
    created = await create_key(session, tenant.id, name="demo")
    return Demo(tenant.id, created.key)


def demo_key(settings: Settings, location: DatabaseLocation) -> str:
    path = settings.data_dir / "demo-key"
    saved = _read_secret(path)
    demo = run_with_session(settings, lambda s: _ensure_demo(s, saved), location)
    if demo.key != saved:
        _write_secret(path, demo.key)
    return demo.key


def cli_hint() -> str:
    """How to run `tollgate` from here: the virtualenv's script (relative to the current
    directory when inside it, as `.venv/bin/tollgate` after `make dev`), else plain `tollgate`."""
    bin_dir = Path(sys.executable).parent
    if sys.prefix == sys.base_prefix or not (bin_dir / "tollgate").exists():
        return "tollgate --help"
    with contextlib.suppress(ValueError):
        bin_dir = bin_dir.relative_to(Path.cwd())
    return f"{bin_dir}/tollgate --help   (or `source {bin_dir}/activate`, then `tollgate …`)"


def print_banner(settings: Settings, host: str, port: int, key: str) -> None:
    url = f"http://{host}:{port}"
    upstream = (
        "simulated (built-in fake Claude; set ANTHROPIC_API_KEY for the real one)"
        if settings.upstream_mode is UpstreamMode.simulated
        else settings.anthropic_base_url or "https://api.anthropic.com"
    )
    database = "embedded Postgres in " + str(settings.data_dir / "pg")
    if settings.database_url:
        database = "DATABASE_URL"
    admin = settings.admin_token.get_secret_value() if settings.admin_token else "(none)"
    print(
        f"\nTollgate dev server: {url}\n"
        f"  database:    {database}\n"
        f"  upstream:    {upstream}\n"
        f"  demo key:    {key}\n"
        f"  admin token: {admin}\n"
        f"  playground:  {url}/   dashboard: {url}/dashboard   metrics: {url}/metrics\n"
        f"  the CLI:     {cli_hint()}\n"
        f"  sample data for the dashboard: tollgate dev-seed\n\n"
        f"Stream a reply:\n"
        f"  curl -N {url}/chat -H 'x-api-key: {key}' -H 'content-type: application/json' "
        f"""-d '{{"message": "Hello, Claude"}}'\n""",
        flush=True,
    )
