"""Helpers for tests that run Tollgate for real: in a uvicorn thread, or as a `tollgate serve`
process, against the simulated upstream and a real Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.http.protocol import bounded
from api.http.threaded import ThreadedServer, bind, embedded_config, serve_in_thread
from api.keys.service import create_key
from api.main import create_app
from api.settings import Settings
from api.state import AppState
from api.tenants.service import create_tenant
from billing.settings import BillingSettings


def free_socket() -> socket.socket:
    return bind("127.0.0.1", 0)


def free_port() -> int:
    with contextlib.closing(free_socket()) as sock:
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    url: str
    running: ThreadedServer

    @property
    def server(self) -> uvicorn.Server:
        return self.running.server

    @property
    def state(self) -> AppState:
        state: AppState = self.server.config.app.state.tollgate  # type: ignore[attr-defined]
        return state

    def stop(self) -> None:
        self.running.stop(grace_s=15)


def start_gateway(
    settings: Settings, database_url: str, billing: BillingSettings | None = None
) -> Gateway:
    app = create_app(settings, database_url, billing)
    running = serve_in_thread(
        bounded(embedded_config(app, lifespan="on"), settings),
        name="tollgate-gateway",
        start_timeout_s=60,
    )
    return Gateway(running.url, running)


def gateway_settings(data_dir: Path, upstream_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "upstream": "simulated",
        "anthropic_base_url": upstream_url,
        "upstream_max_retries": 0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class ServeProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


SERVE_START_TIMEOUT_S = 120  # generous: a loaded 2-core machine imports slowly


def _launch(env: dict[str, str], log: Path) -> ServeProcess:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return ServeProcess(f"http://127.0.0.1:{port}", proc, log)


def _serving(server: ServeProcess) -> bool:
    """True once /healthz answers; False if the process lost its port to another (a test
    running in parallel took it between our probe and its bind): then launch again."""
    deadline = time.monotonic() + SERVE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            if "already in use" in server.log.read_text():
                return False
            raise RuntimeError(f"tollgate serve exited: {server.log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/healthz", timeout=5).status_code == 200:
                return True
        time.sleep(0.1)
    server.proc.kill()
    raise RuntimeError(f"tollgate serve did not start: {server.log.read_text()}")


def spawn_servers(envs: list[tuple[dict[str, str], Path]]) -> list[ServeProcess]:
    """`tollgate serve` processes (for behaviour that depends on the real server), started
    together and returned once each answers; `envs` pairs extra environment with a log path."""
    servers = [_launch(env, log) for env, log in envs]
    try:
        for i, (env, log) in enumerate(envs):
            for _ in range(3):
                if _serving(servers[i]):
                    break
                servers[i] = _launch(env, log)
            else:
                raise RuntimeError(f"tollgate serve found no free port: {log.read_text()}")
    except BaseException:
        for server in servers:
            server.stop(signal.SIGKILL)
        raise
    return servers


def spawn_serve(env: dict[str, str], log: Path) -> ServeProcess:
    """One `tollgate serve` process (see `spawn_servers`)."""
    return spawn_servers([(env, log)])[0]


@dataclass(frozen=True)
class TenantKey:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    key: str


async def make_tenant_key(
    sessions: async_sessionmaker[AsyncSession],
    *,
    plan: str = "pro",
    name: str | None = None,
    user: str | None = None,
) -> TenantKey:
    """A tenant (named `name`, else a fresh unique name: names are unique) and a key for it."""
    async with sessions() as session, session.begin():
        tenant = await create_tenant(session, name or f"tenant-{uuid.uuid4().hex[:8]}", plan)
        created = await create_key(session, tenant.id, name="test", user=user)
    return TenantKey(tenant.id, created.id, created.key)


async def ledger_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT * FROM usage_ledger ORDER BY started_at"))
        return [dict(row) for row in result.mappings()]


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0, interval_s: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval_s)


async def settled_rows(
    engine: AsyncEngine, count: int, timeout_s: float = 60.0, tenant_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """The ledger (of one tenant, if given) once `count` rows exist and none is in flight."""
    rows: list[dict[str, Any]] = []

    async def ready() -> bool:
        nonlocal rows
        rows = await ledger_rows(engine)
        if tenant_id is not None:
            rows = [r for r in rows if r["tenant_id"] == tenant_id]
        return len(rows) >= count and all(r["status"] != "in_flight" for r in rows)

    await wait_until(ready, timeout_s)
    return rows


def walk_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every API route, through included routers (FastAPI keeps them as
    wrappers around the original router)."""
    for route in routes:
        if isinstance(route, APIRoute):
            for method in route.methods:
                yield method, prefix + route.path
        elif hasattr(route, "original_router"):
            inner = prefix + getattr(route.include_context, "prefix", "")
            yield from walk_routes(route.original_router.routes, inner)
