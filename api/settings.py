"""Settings for the API process, read once from the environment (see DESIGN.md, "Environment").

Nothing here reads the environment at import time: call :func:`load_settings` (the CLI and the
app factory do) and pass the object on.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class UpstreamMode(StrEnum):
    anthropic = "anthropic"
    simulated = "simulated"


class UnknownModelMode(StrEnum):
    refuse = "refuse"
    family = "family"


class DisconnectMode(StrEnum):
    drain = "drain"
    close = "close"


class SettingsError(RuntimeError):
    """Configuration is missing or malformed; the message is one line meant for a human."""


_POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+asyncpg://")
_PLACEHOLDERS = {"changeme", "change-me", "xxx", "todo", "secret", "your-key-here"}


def check_database_url(url: str) -> None:
    """Raise ValueError (one line, never echoing the password) unless `url` is a Postgres URL
    with a well-formed host and port and a database name. Without a name, asyncpg would use
    the user's default database, and `tollgate migrate` would silently migrate that one."""
    if not url.startswith(_POSTGRES_SCHEMES):
        scheme = url.split("://", 1)[0] if "://" in url else "(none)"
        raise ValueError(
            "must be a Postgres URL (postgresql://… or postgresql+asyncpg://…), "
            f"got scheme {scheme!r}"
        )
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(
            "has an unbalanced '[' or ']' in its host (IPv6 hosts are written [::1]; "
            "percent-encode special characters in the user name or password)"
        ) from None
    for host in parts.netloc.rpartition("@")[2].split(","):
        _check_host_port(host)
    if not parts.path.strip("/"):
        raise ValueError("names no database: write postgresql://USER:PASSWORD@HOST:PORT/DATABASE")


def _check_host_port(host: str) -> None:
    try:
        port_number = urlsplit("//" + host).port
    except ValueError:
        port = host.rsplit(":", 1)[-1]
        if not port.isdigit():
            raise ValueError(f"has a port that is not a number: {port!r}") from None
        raise ValueError(f"has port {port}, outside 1-65535") from None
    if port_number == 0:
        raise ValueError("has port 0, outside 1-65535")


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """Every variable of DESIGN.md's table that the API process uses."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    database_url: Annotated[str | None, Field(validation_alias=_env("DATABASE_URL"))] = None
    data_dir: Annotated[Path, Field(validation_alias=_env("TOLLGATE_DATA_DIR"))] = Path(".tollgate")
    anthropic_api_key: Annotated[
        SecretStr | None, Field(validation_alias=_env("ANTHROPIC_API_KEY"))
    ] = None
    anthropic_base_url: Annotated[
        str | None, Field(validation_alias=_env("ANTHROPIC_BASE_URL"))
    ] = None
    upstream: Annotated[UpstreamMode | None, Field(validation_alias=_env("TOLLGATE_UPSTREAM"))] = (
        None
    )
    admin_token: Annotated[
        SecretStr | None, Field(validation_alias=_env("TOLLGATE_ADMIN_TOKEN"))
    ] = None
    on_disconnect: Annotated[
        DisconnectMode, Field(validation_alias=_env("TOLLGATE_ON_DISCONNECT"))
    ] = DisconnectMode.drain
    unknown_model: Annotated[
        UnknownModelMode, Field(validation_alias=_env("TOLLGATE_UNKNOWN_MODEL"))
    ] = UnknownModelMode.refuse
    default_model: Annotated[str, Field(validation_alias=_env("TOLLGATE_DEFAULT_MODEL"))] = (
        "claude-sonnet-4-6"
    )
    upstream_timeout_s: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_UPSTREAM_TIMEOUT_S"), gt=0, le=3600)
    ] = Decimal(30)
    upstream_max_retries: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_UPSTREAM_MAX_RETRIES"), ge=0, le=10)
    ] = 2
    reaper_stale_s: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_REAPER_STALE_S"), gt=0, le=3600)
    ] = Decimal(30)
    db_pool_size: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_DB_POOL_SIZE"), gt=0, le=1000)
    ] = 16
    db_admission_wait_s: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_DB_ADMISSION_WAIT_S"), gt=0, le=600)
    ] = Decimal(10)
    db_write_timeout_s: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_DB_WRITE_TIMEOUT_S"), gt=0, le=600)
    ] = Decimal(30)
    # Ledger batches (api/ledger/batcher.py): starts of lease-admitted requests and every
    # settlement are written every this many ms (or every `ledger_flush_max_rows` rows).
    # Escrow leases on the request path (api/ledger/leasing.py); off: every request reserves
    # per request in Postgres, as before leases.
    leases: Annotated[bool, Field(validation_alias=_env("TOLLGATE_LEASES"))] = True
    # Below these a tenant is decided per request only (exact, nothing held): concurrency and
    # rpm limits per live process, and the remainder per process in worst cases.
    lease_min_slots: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_LEASE_MIN_SLOTS"), ge=1, le=1_000_000)
    ] = 64
    lease_min_rpm: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_LEASE_MIN_RPM"), ge=1, le=100_000_000)
    ] = 600
    lease_min_worst_cases: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_LEASE_MIN_WORST_CASES"), ge=1, le=1_000_000)
    ] = 32
    lease_idle_s: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_LEASE_IDLE_S"), gt=0, le=3600)
    ] = Decimal(15)
    ledger_flush_ms: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_LEDGER_FLUSH_MS"), ge=0, le=600_000)
    ] = Decimal(5)
    ledger_flush_max_rows: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_LEDGER_FLUSH_MAX_ROWS"), gt=0, le=100_000)
    ] = 500
    shutdown_grace_s: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_SHUTDOWN_GRACE_S"), ge=0, le=86400)
    ] = Decimal(60)
    max_body_bytes: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_MAX_BODY_BYTES"), gt=0)
    ] = 8 * 1024 * 1024
    max_header_bytes: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_MAX_HEADER_BYTES"), ge=1024, le=1024 * 1024)
    ] = 32 * 1024
    header_timeout_s: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_HEADER_TIMEOUT_S"), gt=0, le=600)
    ] = Decimal(10)
    body_timeout_s: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_BODY_TIMEOUT_S"), gt=0, le=3600)
    ] = Decimal(60)
    auth_failures_per_minute: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_AUTH_FAILURES_PER_MINUTE"), ge=1)
    ] = 30
    key_cache_ttl_s: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_KEY_CACHE_TTL_S"), ge=0, le=60)
    ] = Decimal(2)
    log_level: Annotated[str, Field(validation_alias=_env("TOLLGATE_LOG_LEVEL"))] = "info"
    batch_poll_s: Annotated[
        Decimal, Field(validation_alias=_env("TOLLGATE_BATCH_POLL_S"), gt=0, le=3600)
    ] = Decimal(30)
    batch_max_body_bytes: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_BATCH_MAX_BODY_BYTES"), gt=0)
    ] = 256 * 1024 * 1024
    files_max_bytes: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_FILES_MAX_BYTES"), gt=0)
    ] = 500 * 1024 * 1024
    files_quota_bytes: Annotated[
        int, Field(validation_alias=_env("TOLLGATE_FILES_QUOTA_BYTES"), gt=0)
    ] = 100 * 1024 * 1024 * 1024

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        check_database_url(value)
        return value

    @field_validator("anthropic_api_key", "admin_token")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder, not a real secret")
        return value

    @field_validator("anthropic_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def upstream_mode(self) -> UpstreamMode:
        """`anthropic` when a key is set, else `simulated`, unless TOLLGATE_UPSTREAM says."""
        if self.upstream is not None:
            return self.upstream
        return UpstreamMode.anthropic if self.anthropic_api_key else UpstreamMode.simulated

    def check_upstream(self) -> None:
        if self.upstream_mode is UpstreamMode.anthropic and self.anthropic_api_key is None:
            raise SettingsError(
                "TOLLGATE_UPSTREAM=anthropic needs ANTHROPIC_API_KEY (or unset TOLLGATE_UPSTREAM "
                "to use the simulated upstream)"
            )


def load_settings(**overrides: object) -> Settings:
    """Read the environment; raise :class:`SettingsError` with one readable line on bad input."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    settings.check_upstream()
    return settings


_ENV_NAMES = {
    name: str(field.validation_alias.choices[0])
    for name, field in Settings.model_fields.items()
    if isinstance(field.validation_alias, AliasChoices)
}


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = str(error["loc"][0]) if error["loc"] else "?"
        parts.append(f"{_ENV_NAMES.get(loc, loc)} {error['msg'].removeprefix('Value error, ')}")
    return "invalid configuration: " + "; ".join(parts)
