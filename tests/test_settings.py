"""Settings: every variable of DESIGN.md's table, with one readable error for bad values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from api.settings import DisconnectMode, SettingsError, UpstreamMode, load_settings
from billing.settings import load_billing_settings

ALL_VARS = (
    "DATABASE_URL",
    "TOLLGATE_DATA_DIR",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "TOLLGATE_UPSTREAM",
    "TOLLGATE_ADMIN_TOKEN",
    "TOLLGATE_ON_DISCONNECT",
    "TOLLGATE_DEFAULT_MODEL",
    "TOLLGATE_UPSTREAM_TIMEOUT_S",
    "RAZORPAY_KEY_ID",
    "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET",
    "RAZORPAY_BASE_URL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_design() -> None:
    s = load_settings()
    assert s.database_url is None and str(s.data_dir) == ".tollgate"
    assert s.upstream_mode is UpstreamMode.simulated
    assert s.on_disconnect is DisconnectMode.drain
    assert s.default_model == "claude-sonnet-4-6"
    assert s.upstream_timeout_s == Decimal(30)
    assert not load_billing_settings().enabled


def test_every_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "DATABASE_URL": "postgresql://u:p@db:5432/t",
        "TOLLGATE_DATA_DIR": "/var/tollgate",
        "ANTHROPIC_API_KEY": "sk-ant-real-looking",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/",
        "TOLLGATE_ADMIN_TOKEN": "admin-token-123",
        "TOLLGATE_ON_DISCONNECT": "close",
        "TOLLGATE_DEFAULT_MODEL": "claude-haiku-4-5",
        "TOLLGATE_UPSTREAM_TIMEOUT_S": "2.5",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.upstream_mode is UpstreamMode.anthropic
    assert s.anthropic_base_url == "http://127.0.0.1:9"
    assert s.on_disconnect is DisconnectMode.close
    assert s.upstream_timeout_s == Decimal("2.5")
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "admin-token-123"
    assert "sk-ant" not in repr(s)  # secrets never print


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("DATABASE_URL", "sqlite:///x.db", "DATABASE_URL must be a Postgres URL"),
        ("TOLLGATE_UPSTREAM_TIMEOUT_S", "soon", "TOLLGATE_UPSTREAM_TIMEOUT_S"),
        ("TOLLGATE_UPSTREAM_TIMEOUT_S", "-1", "TOLLGATE_UPSTREAM_TIMEOUT_S"),
        ("TOLLGATE_UPSTREAM", "openai", "TOLLGATE_UPSTREAM"),
        ("ANTHROPIC_API_KEY", "changeme", "placeholder"),
        ("ANTHROPIC_BASE_URL", "api.anthropic.com", "http"),
    ],
)
def test_malformed_values_give_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql://u:hunter2@db:abc/t", "port that is not a number: 'abc'"),
        ("postgresql://u:hunter2@db:99999/t", "port 99999, outside 1-65535"),
        ("postgresql://u:hunter2@db:0/t", "port 0, outside 1-65535"),
        ("postgresql://u:hunter2@[db/t", "unbalanced '['"),
        ("postgresql://u:hunter2@[::1]:x/t", "port that is not a number"),
        ("mysql://u:hunter2@db/t", "must be a Postgres URL"),
        ("localhost:5432/t", "must be a Postgres URL"),
        ("postgresql://", "names no database"),
        ("postgresql://db/", "names no database"),
        ("postgresql://u:hunter2@db:5432", "names no database"),
    ],
)
def test_malformed_database_urls_give_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str, fragment: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("invalid configuration: DATABASE_URL ")
    assert fragment in message and "\n" not in message and "hunter2" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db:5432/t",
        "postgres://db/t",
        "postgresql+asyncpg://u@[::1]:5432/t",
        "postgresql://u@h1:5432,h2:5433/t",
        "postgresql://postgres:@/tollgate?host=/tmp/pg",  # the embedded server's form
    ],
)
def test_well_formed_database_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert load_settings().database_url == url


def test_anthropic_upstream_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLGATE_UPSTREAM", "anthropic")
    with pytest.raises(SettingsError, match="ANTHROPIC_API_KEY"):
        load_settings()


def test_half_configured_billing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAZORPAY_KEY_ID", "rzp_test_1")
    with pytest.raises(SettingsError, match="RAZORPAY_KEY_SECRET, RAZORPAY_WEBHOOK_SECRET"):
        load_billing_settings()
    for name in ("RAZORPAY_KEY_SECRET", "RAZORPAY_WEBHOOK_SECRET"):
        monkeypatch.setenv(name, "s3cr3t-value")
    monkeypatch.setenv("RAZORPAY_BASE_URL", "http://127.0.0.1:9999/")
    billing = load_billing_settings()
    assert billing.enabled and billing.base_url == "http://127.0.0.1:9999"
