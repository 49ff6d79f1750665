import base64
import json
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

EMBEDDED_DATABASE_URL = "sqlite:///./tenvoice.db"
# Shorter keys would be guessable; token_urlsafe(32) gives 43 characters.
MIN_SECRETS_KEY_LENGTH = 32
# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over about 28 hours (API.md).
WEBHOOK_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
_BUDGET = re.compile(r"^[1-9][0-9]{0,8}/(second|minute)$")
_GENERATE_KEY = """python -c 'import secrets; print(secrets.token_urlsafe(32))'"""


class SettingsError(Exception):
    """A setting the service cannot do without; its message is one sentence for the operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENVOICE_", extra="ignore")

    database_url: str = EMBEDDED_DATABASE_URL
    # Migrations run as the schema owner; the service should run as a role that row-level
    # security binds. Unset, migrations use `database_url` (the one-URL set-up).
    migration_database_url: str | None = None
    # The role that receives table privileges at migration time (README: production set-up).
    database_app_role: str = "tenvoice_app"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    admin_key: str | None = None
    gateway_webhook_secret: str | None = None
    # The server's own secret: every public invoice link's token is derived from it and
    # webhook signing secrets are sealed with it (each use gets its own subkey). Changing it
    # breaks every link already sent and every endpoint's secret.
    secrets_key: str | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # How long a request may take to arrive whole (line, headers and body) before the
    # server answers 408 and closes the connection.
    request_timeout_seconds: float = Field(default=30, gt=0, le=3600)
    # Where customers reach this service, for the invoice links it hands out (hostedUrl);
    # unset, each link uses the address its request came in on.
    public_base_url: str | None = None

    # The outbox worker: `serve` runs one in-process unless this is off; `tenvoice worker`
    # runs one on its own.
    worker: bool = True
    worker_concurrency: int = Field(default=16, ge=1, le=256)
    # How long an idle worker waits before looking for due jobs again.
    worker_poll_seconds: float = Field(default=0.2, gt=0, le=60)
    # A claimed job is invisible to other workers this long; a worker that dies mid-job
    # gives it back when the lease runs out.
    worker_lease_seconds: float = Field(default=30, gt=0, le=3600)
    # Attempts before a job is dead (kept, with its last error, for an operator).
    worker_max_attempts: int = Field(default=10, ge=1, le=100)
    # Retry n waits backoff * 2^(n-1) (with jitter), at most worker_backoff_max_seconds.
    worker_backoff_seconds: float = Field(default=1, gt=0, le=3600)
    worker_backoff_max_seconds: float = Field(default=600, gt=0, le=86400)

    # Where the simulated gateway posts its webhooks; unset, `serve` points it at itself.
    gateway_callback_url: str | None = None
    # How long the simulated gateway takes to answer a charge with its webhook.
    gateway_latency_ms: int = Field(default=100, ge=0, le=600_000)
    # Idempotency keys are kept at least this long (API.md: >= 24 h).
    idempotency_retention_hours: float = Field(default=24, ge=24)

    # Outbound webhooks: the waits before retries 1..7 (API.md), comma-separated seconds in
    # the environment; tests use short ones.
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = WEBHOOK_RETRY_SCHEDULE
    # Lifts the rule that endpoints resolve to public addresses over https (development and
    # tests, whose receivers listen on loopback).
    webhook_allow_private: bool = False

    # Operations (API.md "Rate limits", "Operations").
    # Shared state for every process (rate limits); unset, each process counts alone.
    redis_url: str | None = None
    # Every key this service writes to Redis starts with it, so several deployments (or test
    # runs) can share one Redis without counting each other's requests.
    redis_key_prefix: str = Field(default="tenvoice", min_length=1, max_length=100)
    # Budgets, in the `limits` notation ("100/second", "6000/minute"), each spent in fixed
    # windows that hold the whole budget (a client may spend it in one burst): each credential's,
    # each tenant's for all its keys together (unset: 4x the credential's, or the tenant's
    # own set by the admin), each client address's on the public hosted pages, and each
    # source address's on the signed gateway webhook route.
    rate_limit: str = "100/second"
    tenant_rate_limit: str | None = None
    hosted_rate_limit: str = "10/second"
    webhook_rate_limit: str = "100/second"
    # `json` (one object a line) or `console` (readable); unset, json unless stdout is a
    # terminal.
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Set, /metrics answers only `Authorization: Bearer <token>`.
    metrics_token: str | None = None
    # Set, `tenvoice worker` serves its own /metrics there (the API's /metrics has `serve`'s).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    @field_validator("rate_limit", "tenant_rate_limit", "hosted_rate_limit", "webhook_rate_limit")
    @classmethod
    def _budget(cls, value: str | None) -> str | None:
        if value is not None and not _BUDGET.match(value):
            raise ValueError("write a budget as N/second or N/minute, N at least 1")
        return value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_fits(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(wait < 0 or wait > 7 * 86400 for wait in value):
            raise ValueError("each wait must be 0..604800 seconds, and there must be one")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    """The file behind a `sqlite:///` URL, or None for an in-memory database."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix) :].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def ensure_embedded_secrets(settings: Settings) -> list[str]:
    """Fill the admin key, webhook secret and secrets key of the embedded set-up from a file
    beside the DB.

    The embedded default must run with no configuration, yet the keys must survive restarts,
    so they are generated once and kept next to the database file. Returns what was generated
    or loaded, for printing at start.
    """
    path = sqlite_path(settings.database_url)
    if path is None or (
        settings.admin_key and settings.gateway_webhook_secret and settings.secrets_key
    ):
        return []
    secrets_file = path.with_name(path.name + ".secrets.json")
    stored: dict[str, str] = {}
    if secrets_file.exists():
        stored = json.loads(secrets_file.read_text())
    changed = False
    if "admin_key" not in stored:
        stored["admin_key"] = "tv_admin_" + secrets.token_urlsafe(32)
        changed = True
    if "gateway_webhook_secret" not in stored:
        stored["gateway_webhook_secret"] = (
            "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        )
        changed = True
    if "secrets_key" not in stored:
        stored["secrets_key"] = secrets.token_urlsafe(32)
        changed = True
    if changed:
        secrets_file.touch(mode=0o600)
        secrets_file.write_text(json.dumps(stored, indent=2))
    lines = []
    if not settings.admin_key:
        settings.admin_key = stored["admin_key"]
        lines.append(f"admin key: {settings.admin_key}")
    if not settings.gateway_webhook_secret:
        settings.gateway_webhook_secret = stored["gateway_webhook_secret"]
        lines.append(f"gateway webhook secret: {settings.gateway_webhook_secret}")
    if lines:
        lines.append(f"(kept in {secrets_file})")
    # Not printed: nobody types it in, and it unlocks every public invoice link and every
    # webhook endpoint's signing secret.
    settings.secrets_key = settings.secrets_key or stored["secrets_key"]
    return lines


def require_secrets_key(key: str | None) -> str:
    """The secrets key the service is given, if it is fit to derive links from."""
    if not key:
        raise SettingsError(
            f"TENVOICE_SECRETS_KEY is not set: generate one with {_GENERATE_KEY}, "
            "keep it secret and never change it (public invoice links derive from it and "
            "webhook signing secrets are sealed with it)."
        )
    if len(key) < MIN_SECRETS_KEY_LENGTH:
        raise SettingsError(
            f"TENVOICE_SECRETS_KEY is too short ({len(key)} characters, at least "
            f"{MIN_SECRETS_KEY_LENGTH}): generate one with {_GENERATE_KEY}."
        )
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
