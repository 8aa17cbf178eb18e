"""All gateway settings in one pydantic-settings class (environment prefix `ANGEL_`, or CLI flags)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that mean "somebody forgot to set a real secret": refused at start-up.
_PLACEHOLDERS = re.compile(
    r"^(change[-_ ]?me|changeit|secret|password|example|dummy|test|xxx+"
    r"|your[-_ ].*|<.*>|sk-\.\.\.|sk-xxx.*|todo)$",
    re.IGNORECASE,
)
MIN_KEY_LENGTH = 20


def _refuse_placeholder(value: str, what: str) -> None:
    if _PLACEHOLDERS.match(value.strip()):
        raise ValueError(f"{what} looks like a placeholder ({value[:3]}...); set a real secret")


def _refuse_weak(value: str, what: str) -> None:
    """A secret the gateway checks callers against: no placeholder, and long enough to be random."""
    _refuse_placeholder(value, what)
    if len(value) < MIN_KEY_LENGTH:
        raise ValueError(f"{what} must be at least {MIN_KEY_LENGTH} characters (high entropy)")


class Settings(BaseSettings):
    """Gateway configuration. Every field maps to `ANGEL_<FIELD>` and to `--<field>` on the command line."""

    model_config = SettingsConfigDict(env_prefix="ANGEL_", extra="ignore", validate_default=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    upstream_url: str = "http://127.0.0.1:8000"
    # vLLM's own --api-key, if it has one; the client's key is never forwarded upstream.
    upstream_api_key: SecretStr | None = None
    # Development/test keys (comma-separated plaintext); production keys live hashed in the database.
    api_keys: SecretStr = SecretStr("")
    database_url: str = "sqlite:///./angel-gateway.db"
    redis_url: str | None = None
    safety_policy: str | None = None
    safety_enabled: bool = True
    # Per-tenant prefix-cache isolation (server/tenancy.py): the vLLM `cache_salt` of every request comes
    # from the key's tenant (`tenant`), from the key itself (`key`), or is not set (`off`). The secret is
    # the salts' HMAC key; replicas must share it (unset: random per process).
    cache_isolation: Literal["tenant", "key", "off"] = "tenant"
    cache_salt_secret: SecretStr | None = None

    # Limits applied to ANGEL_API_KEYS keys (0 = unlimited); database keys carry their own.
    default_rpm: int = Field(0, ge=0)
    default_tpm: int = Field(0, ge=0)
    default_max_tokens: int = Field(0, ge=0)
    # Rate limiting with an unreachable Redis: admit (fail open, the default: auth still applies and the
    # engine has its own queue) or refuse with 503 (fail closed).
    ratelimit_fail_open: bool = True

    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # A request's request line and headers together, counted as they arrive and before authentication:
    # past this the client gets 431 and the connection is closed (memory per connection stays bounded).
    max_header_bytes: int = Field(64 * 1024, ge=4096)
    # The largest upstream SSE event relayed whole (one event holds one chunk; echo with logprobs on a long
    # prompt makes events of many MiB). A stream's buffer never grows past it.
    max_event_bytes: int = Field(64 * 1024 * 1024, ge=64 * 1024)
    # Worker processes that parse and scan large request bodies off the event loop (server/offload.py).
    scan_workers: int = Field(2, ge=1, le=64)
    # Deadlines against slow-loris clients: a request's headers must arrive within header_timeout
    # seconds of its first byte, and its body within body_timeout seconds of the headers (408 otherwise).
    header_timeout: float = Field(10.0, gt=0)
    body_timeout: float = Field(30.0, gt=0)
    upstream_connect_timeout: float = Field(5.0, gt=0)
    # Longest silence allowed between two reads from the upstream (whole answer for non-streams).
    upstream_read_timeout: float = Field(600.0, gt=0)
    upstream_max_connections: int = Field(2048, ge=1)
    ready_cache_seconds: float = Field(5.0, ge=0)
    ready_timeout: float = Field(10.0, gt=0)
    models_cache_seconds: float = Field(10.0, ge=0)
    # How long a key lookup (and a revocation) may be served from memory.
    key_cache_seconds: float = Field(2.0, ge=0)
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    audit_enabled: bool = True
    log_level: str = "info"
    # When set, GET /metrics requires `Authorization: Bearer <this token>` (Prometheus: `authorization`
    # in the scrape config). Unset, /metrics is open and the NetworkPolicy is what limits who scrapes.
    metrics_token: SecretStr | None = None

    @field_validator("upstream_url")
    @classmethod
    def _check_upstream(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http(s):// URL, e.g. http://127.0.0.1:8000")
        return v.rstrip("/").removesuffix("/v1")

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, v: str) -> str:
        if not (v.startswith(("sqlite:///", "postgresql://", "postgres://"))):
            raise ValueError("must be sqlite:///path or postgresql://user:pass@host/db")
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be redis://host:port/db, rediss://... or unix://...")
        return v

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, v: SecretStr) -> SecretStr:
        for key in _split(v.get_secret_value()):
            _refuse_weak(key, "a key in ANGEL_API_KEYS")
        return v

    @field_validator("upstream_api_key")
    @classmethod
    def _check_upstream_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value():
            _refuse_placeholder(v.get_secret_value(), "ANGEL_UPSTREAM_API_KEY")
            return v
        return None

    @field_validator("cache_salt_secret")
    @classmethod
    def _check_cache_salt_secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        _refuse_weak(v.get_secret_value(), "ANGEL_CACHE_SALT_SECRET")
        return v

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        _refuse_weak(v.get_secret_value(), "ANGEL_METRICS_TOKEN")
        return v

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, v: str) -> str:
        if v.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be debug, info, warning or error")
        return v.lower()

    def dev_keys(self) -> list[str]:
        return _split(self.api_keys.get_secret_value())


def _split(raw: str) -> list[str]:
    return [k.strip() for k in raw.split(",") if k.strip()]
