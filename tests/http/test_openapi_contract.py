"""The OpenAPI document and the service agree (issue 10, defect 10): what the document calls
valid is accepted, what it calls invalid is refused with a 400 (never a 500), and each route's
errors, credentials and bodies are declared as the route really answers. `make schemathesis`
checks the same at scale; these are the cases it found, pinned."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from api.inputs import INSTANT_PATTERN, NAME_PATTERN, TEXT_PATTERN
from api.money import DECIMAL_TEXT
from tests.http.conftest import ADMIN_TOKEN
from tests.support import Gateway, TenantKey

MODEL = "claude-haiku-4-5"


@pytest.fixture
async def admin(admin_gateway: Gateway) -> Any:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=admin_gateway.url, headers=headers) as client:
        yield client


@pytest.fixture
async def tenant_client(admin_gateway: Gateway, tenant: TenantKey) -> Any:
    headers = {"x-api-key": tenant.key}
    async with httpx.AsyncClient(base_url=admin_gateway.url, headers=headers) as client:
        yield client


async def test_every_route_names_its_credential_and_error_shape(admin: httpx.AsyncClient) -> None:
    doc = (await admin.get("/openapi.json")).json()
    assert set(doc["components"]["securitySchemes"]) == {"TenantKey", "TenantBearer", "AdminToken"}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            security = operation.get("security")
            if path.startswith("/admin/"):
                assert security == [{"AdminToken": []}], (method, path)
            elif path.startswith("/v1/") or path == "/chat":
                assert security == [{"TenantKey": []}, {"TenantBearer": []}], (method, path)
            for status in ("408", "413", "431"):  # the edge refuses these on every route
                assert status in operation["responses"], (method, path, status)
    completions = doc["paths"]["/v1/chat/completions"]["post"]
    error = completions["responses"]["400"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/OpenAIError"}
    assert "retry-after" in completions["responses"]["529"]["headers"]
    upload = doc["paths"]["/v1/files"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["required"] == ["file"]
    usage = {p["name"] for p in doc["paths"]["/v1/usage"]["get"]["parameters"]}
    assert {"from", "to", "group_by", "format"} <= usage and "tenant_id" not in usage
    assert "201" in doc["paths"]["/admin/plans/{code}"]["put"]["responses"]


def test_the_documented_patterns_are_the_ones_checked() -> None:
    assert re.fullmatch(DECIMAL_TEXT, "12.50") and not re.fullmatch(DECIMAL_TEXT, "1e3")
    assert not re.fullmatch(DECIMAL_TEXT, "05") and not re.fullmatch(DECIMAL_TEXT, "")
    assert re.search(NAME_PATTERN, " Acme ") and not re.search(NAME_PATTERN, "   ")
    assert not re.search(TEXT_PATTERN, "a\x00b") and not re.search(TEXT_PATTERN, "a\x85b")
    assert re.fullmatch(INSTANT_PATTERN, "2026-11-01T12:00:00Z")
    assert not re.fullmatch(INSTANT_PATTERN, "2026-13-01")


async def test_a_derived_cache_rate_above_the_bound_is_refused_and_the_book_still_loads(
    admin: httpx.AsyncClient,
) -> None:
    # 2x an input rate of 600,000 is a 1h cache-write rate over the 1,000,000 bound: it used to
    # be stored, and then every reload of the price book failed (a 500, and stale prices).
    refused = await admin.put("/admin/prices/claude-big-1", json={"input": "600000", "output": 1})
    assert refused.status_code == 400 and "cache_write_1h" in refused.text
    geo = {"input": 1, "output": 2, "geo_multipliers": {"u\x00s": 1}}
    assert (await admin.put("/admin/prices/claude-big-1", json=geo)).status_code == 400
    stored = await admin.put("/admin/prices/claude-big-1", json={"input": 1.5, "output": "2"})
    assert stored.status_code == 201, stored.text
    prices = await admin.get("/admin/prices")
    assert "claude-big-1" in [m["model"] for m in prices.json()["models"]]


async def test_report_filters_refuse_control_characters(tenant_client: httpx.AsyncClient) -> None:
    for name in ("model", "user"):
        response = await tenant_client.get("/v1/usage", params={name: "a\x00b"})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"].startswith(f"{name}:")


async def test_a_json_integer_may_be_written_with_a_zero_fraction(
    tenant_client: httpx.AsyncClient,
) -> None:
    body = {"model": MODEL, "max_tokens": 16.0, "messages": [{"role": "user", "content": "hi"}]}
    assert (await tenant_client.post("/v1/messages", json=body)).status_code == 200
    body["max_tokens"] = 16.5
    assert (await tenant_client.post("/v1/messages", json=body)).status_code == 400


async def test_a_batch_body_is_parsed_strictly(tenant_client: httpx.AsyncClient) -> None:
    raw = b'{"requests": [], "requests": []}'
    response = await tenant_client.post(
        "/v1/messages/batches", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and "duplicate key" in response.text
    nested = b"[" * 5000 + b"]" * 5000
    deep = await tenant_client.post(
        "/v1/messages/batches", content=nested, headers={"content-type": "application/json"}
    )
    assert deep.status_code == 400
