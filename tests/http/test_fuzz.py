"""Property-based fuzz of the request parsers (issue 10, "no 500 from any client input"):
`/v1/messages`, `/chat` and the admin bodies get arbitrary JSON, near-valid bodies with hostile
values, and raw byte strings; no answer may be a 5xx. About 2,200 cases in all, against one
real app for the whole module (real Postgres, the simulated upstream over HTTP, the app's own
lifespan and middleware) driven in process through httpx's ASGI transport: no socket or server
thread per request, so the cases cost what the parsers cost. Socket-level behaviour (head size,
timeouts) is tested against a real server in test_edge_limits.py."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.main import create_app
from tests.http.conftest import ADMIN_TOKEN
from tests.pg import admin, new_name, with_database
from tests.support import gateway_settings

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "a\ud800b", "\u202e", "x" * 5000, "claude-haiku-4-5"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=8,
)
messages = st.one_of(
    json_values,
    st.just([{"role": "user", "content": "hi"}]),
    st.lists(st.fixed_dictionaries({"role": json_values, "content": json_values}), max_size=3),
)
tools = st.one_of(
    json_values,
    st.lists(
        st.fixed_dictionaries(
            {"type": st.just("web_search_20250305"), "name": st.just("web_search")},
            optional={"max_uses": st.one_of(st.integers(min_value=-5, max_value=10**30), scalars)},
        ),
        max_size=3,
    ),
)
messages_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.just("claude-haiku-4-5"), json_values),
        "max_tokens": st.one_of(st.integers(min_value=-5, max_value=10**30), json_values),
        "messages": messages,
        "stream": st.one_of(st.booleans(), json_values),
        "metadata": st.one_of(
            json_values, st.fixed_dictionaries({"user_id": st.one_of(hostile_text, scalars)})
        ),
        "tools": tools,
        "system": json_values,
    },
)
chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "message": st.one_of(st.just("hi"), json_values),
        "messages": messages,
        "model": st.one_of(st.just("claude-haiku-4-5"), json_values),
        "max_tokens": st.one_of(st.integers(min_value=-5, max_value=10**30), json_values),
        "user": st.one_of(hostile_text, scalars),
        "system": json_values,
    },
)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.just(b'{"model":"a","model":"b"}'),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])


@dataclass
class InProcess:
    """The app, its event loop, and clients that reach it through the ASGI transport."""

    app: FastAPI
    loop: asyncio.AbstractEventLoop
    tenant: httpx.AsyncClient
    admin: httpx.AsyncClient

    def send(self, client: httpx.AsyncClient, method: str, path: str, body: bytes) -> int:
        response = self.loop.run_until_complete(client.request(method, path, content=body))
        _no_server_error(response)
        return response.status_code


async def _tenant_key(client: httpx.AsyncClient) -> str:
    tenant = await client.post("/admin/tenants", json={"name": "fuzz"})
    key = await client.post(f"/admin/tenants/{tenant.json()['id']}/keys", json={})
    return str(key.json()["key"])


@pytest.fixture(scope="module")
def fuzzed(
    pg_server: str, template_db: str, simulator: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcess]:
    loop = asyncio.new_event_loop()
    name = new_name("tollgate_fuzz")
    loop.run_until_complete(admin(pg_server, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        gateway_settings(data_dir, simulator, admin_token=ADMIN_TOKEN),
        with_database(pg_server, name),
    )
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    transport = httpx.ASGITransport(app=app)
    base = "http://fuzz.test"
    admin_client = httpx.AsyncClient(
        transport=transport, base_url=base, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    key = loop.run_until_complete(_tenant_key(admin_client))
    tenant_client = httpx.AsyncClient(
        transport=transport, base_url=base, headers={"x-api-key": key}
    )
    try:
        yield InProcess(app, loop, tenant_client, admin_client)
        pool = app.state.tollgate.engine.pool
        assert pool.checkedout() == 0, "database connections still checked out"
    finally:
        for client in (tenant_client, admin_client):
            loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        leftover = asyncio.all_tasks(loop)  # e.g. SSE responses' shutdown watchers
        for task in leftover:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.run_until_complete(admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        loop.close()


def test_messages_never_answers_5xx(fuzzed: InProcess) -> None:
    @FUZZ
    @given(body=st.one_of(messages_bodies.map(_encode), raw_bodies))
    def check(body: bytes) -> None:
        fuzzed.send(fuzzed.tenant, "POST", "/v1/messages", body)

    check()


def test_chat_never_answers_5xx(fuzzed: InProcess) -> None:
    @FUZZ
    @given(body=st.one_of(chat_bodies.map(_encode), raw_bodies))
    def check(body: bytes) -> None:
        fuzzed.send(fuzzed.tenant, "POST", "/chat", body)

    check()


def test_count_tokens_never_answers_5xx(fuzzed: InProcess) -> None:
    @settings(FUZZ, max_examples=200)
    @given(body=st.one_of(messages_bodies.map(_encode), raw_bodies))
    def check(body: bytes) -> None:
        fuzzed.send(fuzzed.tenant, "POST", "/v1/messages/count_tokens", body)

    check()


admin_fields = st.dictionaries(
    st.sampled_from(
        [
            "name",
            "plan",
            "user",
            "status",
            "monthly_budget_usd",
            "rpm_limit",
            "max_concurrent",
            "quota_mode",
            "user_default_budget_usd",
            "razorpay_plan_id",
            "other",
        ]
    ),
    json_values,
    max_size=5,
)


def test_admin_bodies_never_answer_5xx(fuzzed: InProcess) -> None:
    created = fuzzed.loop.run_until_complete(
        fuzzed.admin.post("/admin/tenants", json={"name": "admin fuzz"})
    )
    tenant_id = created.json()["id"]
    paths = [
        ("POST", "/admin/tenants"),
        ("PATCH", f"/admin/tenants/{tenant_id}"),
        ("POST", f"/admin/tenants/{tenant_id}/keys"),
        ("PUT", f"/admin/tenants/{tenant_id}/users/u1/limit"),
        ("PUT", "/admin/plans/fuzz-plan"),
        ("PATCH", f"/admin/tenants/{uuid.uuid4()}"),
    ]

    @settings(FUZZ, max_examples=1200)
    @given(
        target=st.sampled_from(paths),
        body=st.one_of(admin_fields.map(_encode), json_values.map(_encode), raw_bodies),
    )
    def check(target: tuple[str, str], body: bytes) -> None:
        method, path = target
        fuzzed.send(fuzzed.admin, method, path, body)

    check()
