"""Property-based fuzz of the request parsers (issue 10, "no 500 from any client input"):
`/v1/messages`, `/chat` and the admin bodies get arbitrary JSON, near-valid bodies with hostile
values, and raw byte strings; no answer may be a 5xx. Runs against a real gateway (uvicorn
thread, simulated upstream, real Postgres); about 2,400 cases in all."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http.conftest import ADMIN_TOKEN
from tests.support import Gateway, TenantKey

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
    max_leaves=12,
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


@pytest.fixture
def tenant_client(gateway: Gateway, tenant: TenantKey) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, headers={"x-api-key": tenant.key}, timeout=30)


@pytest.fixture
def admin_client(admin_gateway: Gateway) -> httpx.Client:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    return httpx.Client(base_url=admin_gateway.url, headers=headers, timeout=30)


def test_messages_never_answers_5xx(tenant_client: httpx.Client) -> None:
    @FUZZ
    @given(body=st.one_of(messages_bodies.map(_encode), raw_bodies))
    def check(body: bytes) -> None:
        _no_server_error(tenant_client.post("/v1/messages", content=body))

    check()


def test_chat_never_answers_5xx(tenant_client: httpx.Client) -> None:
    @FUZZ
    @given(body=st.one_of(chat_bodies.map(_encode), raw_bodies))
    def check(body: bytes) -> None:
        _no_server_error(tenant_client.post("/chat", content=body))

    check()


def test_count_tokens_never_answers_5xx(tenant_client: httpx.Client) -> None:
    @settings(FUZZ, max_examples=200)
    @given(body=st.one_of(messages_bodies.map(_encode), raw_bodies))
    def check(body: bytes) -> None:
        _no_server_error(tenant_client.post("/v1/messages/count_tokens", content=body))

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


def test_admin_bodies_never_answer_5xx(admin_client: httpx.Client) -> None:
    tenant_id = admin_client.post("/admin/tenants", json={"name": "fuzz"}).json()["id"]
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
        _no_server_error(admin_client.request(method, path, content=body))

    check()
