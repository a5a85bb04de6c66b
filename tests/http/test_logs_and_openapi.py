"""Logs that leak nothing and say each failure once, and an OpenAPI document that tells the
truth (issue 10, defects 9 and 10)."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.db.engine import make_engine
from tests.http.conftest import ADMIN_TOKEN
from tests.support import Gateway


async def test_sql_errors_do_not_carry_bound_parameters(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                # Division by zero: the server's message has no value, only SQLAlchemy's would.
                await conn.execute(
                    text("SELECT 1 / (length(CAST(:v AS text)) - 14)"), {"v": "secret-hash-42"}
                )
    finally:
        await engine.dispose()
    assert "division by zero" in str(caught.value)
    assert "secret-hash-42" not in str(caught.value)


async def test_an_unhandled_error_is_logged_exactly_once(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> None:
        raise RuntimeError("kaboom")

    app = gateway.server.config.app  # type: ignore[attr-defined]
    app.add_api_route("/test-only/boom", boom)
    with caplog.at_level(logging.ERROR):
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            response = await client.get("/test-only/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["type"] == "api_error" and "kaboom" not in response.text
    failures = [r for r in caplog.records if r.exc_info and "kaboom" in str(r.exc_info[1])]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert failures[0].__dict__.get("request_id") == body["request_id"]


async def test_a_405_names_the_allowed_methods(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        response = await client.delete("/v1/messages")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        both = await client.put("/admin/tenants")
    assert both.headers["allow"] == "GET, POST"  # every route at the path, not the first
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_the_openapi_document_declares_real_statuses_and_bodies(
    admin_gateway: Gateway,
) -> None:
    async with httpx.AsyncClient(base_url=admin_gateway.url) as client:
        doc = (await client.get("/openapi.json")).json()
    assert "422" not in str(doc["paths"])
    assert "Error" in doc["components"]["schemas"]
    for path in ("/v1/messages", "/chat", "/v1/messages/count_tokens", "/webhooks/razorpay"):
        operation = doc["paths"][path]["post"]
        assert "application/json" in operation["requestBody"]["content"], path
        assert "400" in operation["responses"], path
    messages = doc["paths"]["/v1/messages"]["post"]["responses"]
    assert {"401", "402", "403", "404", "413", "429", "503", "529"} <= set(messages)
    tenants = doc["paths"]["/admin/tenants"]["post"]
    assert tenants["requestBody"]["content"]["application/json"]["schema"]["required"] == ["name"]
    assert ADMIN_TOKEN not in str(doc)
