"""Failed-authentication throttling and a key cache a flood cannot flush (issue 10, defect 12)."""

from __future__ import annotations

import time
import uuid

import httpx

from api.http.throttle import AuthThrottle, TooManyFailures
from api.keys.principal import KeyCache, KeyEntry, Principal
from api.keys.secrets import generate_key, hash_key
from tests.http.conftest import ADMIN_TOKEN
from tests.support import Gateway, TenantKey

MESSAGES = [{"role": "user", "content": "hi"}]


async def test_wrong_admin_tokens_are_throttled_per_address(admin_gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=admin_gateway.url) as client:
        statuses = []
        for i in range(40):
            response = await client.get(
                "/admin/tenants", headers={"authorization": f"Bearer wrong-{i}"}
            )
            statuses.append(response.status_code)
        assert statuses[0] == 401
        assert statuses[-1] == 429
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["type"] == "rate_limit_error"
        # While throttled even the right token waits: the address is what is limited.
        ok = await client.get("/admin/tenants", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert ok.status_code == 429


async def test_random_keys_are_throttled_but_a_known_key_keeps_working(
    gateway: Gateway, tenant: TenantKey
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        usage = await client.get("/v1/usage", headers={"x-api-key": tenant.key})
        assert usage.status_code == 200  # now cached as a known key
        last = None
        for _ in range(40):
            last = await client.get("/v1/usage", headers={"x-api-key": generate_key()})
        assert last is not None and last.status_code == 429
        assert "retry-after" in last.headers
        # The gateway fixture caches for 0 s: a known key's lookup still goes through.
        again = await client.get("/v1/usage", headers={"x-api-key": tenant.key})
    assert again.status_code in (200, 429)


def test_the_throttle_limits_each_subject_for_one_window() -> None:
    now = [1000.0]
    throttle = AuthThrottle(3, clock=lambda: now[0])
    for _ in range(3):
        throttle.check("ip:a")
        throttle.failed("ip:a", "key:tg_live_abc")
    try:
        throttle.check("ip:a")
        raise AssertionError("not throttled")
    except TooManyFailures as exc:
        assert exc.status == 429 and exc.headers["retry-after"] == "60"
    throttle.check("ip:b")  # another address is not affected
    now[0] += 61
    throttle.check("ip:a")  # a new window


def test_the_throttle_forgets_the_least_recent_subjects_first() -> None:
    throttle = AuthThrottle(1, max_subjects=2)
    throttle.failed("a")
    throttle.failed("b")
    throttle.failed("c")
    throttle.check("a")  # forgotten: not throttled
    try:
        throttle.check("c")
        raise AssertionError("not throttled")
    except TooManyFailures:
        pass


def _principal() -> Principal:
    return Principal(
        tenant_id=uuid.uuid4(),
        key_id=uuid.uuid4(),
        plan_code="pro",
        allowed_models=None,
        bound_user_id=None,
        bound_user=None,
    )


def test_a_flood_of_unknown_keys_never_evicts_a_known_one() -> None:
    cache = KeyCache(60.0, max_known=10, max_unknown=100)
    later = time.monotonic() + 60
    good = hash_key(generate_key())
    cache.put(good, KeyEntry(_principal(), False, later))
    for _ in range(10_000):
        cache.put(hash_key(generate_key()), KeyEntry(None, False, later))
    assert cache.get(good) is not None


def test_known_keys_are_evicted_least_recently_used_first() -> None:
    cache = KeyCache(60.0, max_known=2, max_unknown=2)
    later = time.monotonic() + 60
    a, b, c = (hash_key(generate_key()) for _ in range(3))
    cache.put(a, KeyEntry(_principal(), False, later))
    cache.put(b, KeyEntry(_principal(), False, later))
    assert cache.get(a) is not None  # a is now the most recent
    cache.put(c, KeyEntry(_principal(), False, later))
    assert cache.get(a) is not None and cache.get(c) is not None
    assert cache.get(b) is None
