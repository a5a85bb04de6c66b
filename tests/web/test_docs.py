"""The API docs (Swagger UI at /docs, ReDoc at /redoc) load only this server's files, so they
work offline; and HEAD answers on the pages and static files like GET."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support import Gateway

ASSET = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: *'([^']+)'""")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_api_docs_reference_only_local_assets_that_are_served(
    gateway: Gateway, path: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        page = await http.get(path)
        assert page.status_code == 200
        assert "//" not in re.sub(r"<!--.*?-->", "", page.text, flags=re.S).replace(
            "<!DOCTYPE", ""
        ), "an absolute URL (a CDN) in the docs page"
        urls = [a or b for a, b in ASSET.findall(page.text)]
        assert "/openapi.json" in urls and any(u.startswith("/static/vendor/") for u in urls)
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            assert (await http.get(url)).status_code == 200, url


async def test_head_answers_on_the_pages_and_static_files(gateway: Gateway) -> None:
    paths = ("/", "/dashboard", "/docs", "/redoc", "/static/style.css", "/static/dashboard.js")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for path in paths:
            head = await http.head(path)
            get = await http.get(path)
            assert head.status_code == 200, path
            assert head.headers["content-type"] == get.headers["content-type"], path
            assert head.content == b"", path
