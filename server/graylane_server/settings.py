"""Server settings, read from `GRAYLANE_*` environment variables.

With none set the server runs on its embedded default: a SQLite file under `.graylane/`
and an in-process bus instead of Redis.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_ENVIRONMENTS = ("development", "staging", "production")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRAYLANE_", env_file=None, extra="ignore")

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; PostgreSQL in production. Unset: SQLite."
    )
    redis_url: str | None = Field(
        default=None, description="Redis for fan-out, counters and locks. Unset: in-process."
    )
    data_dir: Path = Field(default=Path(".graylane"), description="Where the SQLite file lives.")
    bootstrap_admin_token: SecretStr | None = Field(
        default=None, description="Becomes an admin token on first start with no tokens."
    )
    migrate_on_start: bool | None = Field(
        default=None,
        description="Apply migrations at start. Unset: yes for SQLite, no for PostgreSQL "
        "(run `graylane-server migrate` once per release instead).",
    )
    reconcile_interval: float = Field(
        default=5.0, gt=0, description="Seconds between checks for missed change notices."
    )
    stream_heartbeat: float = Field(default=15.0, gt=0, description="Seconds between SSE pings.")
    token_cache_ttl: float = Field(
        default=60.0, ge=0, description="Seconds a verified token is trusted without the database."
    )
    max_body_bytes: int = Field(default=1_048_576, gt=0, description="Largest request body.")
    controller_interval: float = Field(
        default=5.0, gt=0, description="Seconds between ramp controller ticks."
    )
    prometheus_url: str | None = Field(
        default=None, description="Prometheus for `prometheus` guards that name no url."
    )
    prometheus_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Other Prometheus servers a `prometheus` guard may name in its `url`, "
        "comma-separated; a plan naming any other is refused. GRAYLANE_PROMETHEUS_URL is "
        "always allowed.",
    )
    access_log: bool = Field(default=False, description="Log every request (no headers).")
    stale_after_days: float = Field(
        default=30,
        gt=0,
        description="Admin UI: a flag left unchanged this long at 0% or 100% is listed as stale.",
    )
    ui_session_hours: float = Field(
        default=12,
        gt=0,
        description="Admin UI: how long a sign-in lasts without use; using it extends it.",
    )
    ui_session_max_hours: float = Field(
        default=168,
        gt=0,
        description="Admin UI: no sign-in lasts longer than this, in use or not.",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Admin UI: failed sign-ins allowed per username and address in the window.",
    )
    login_window_seconds: float = Field(
        default=300,
        gt=0,
        description="Admin UI: seconds over which failed sign-ins are counted.",
    )
    login_max_failures_per_address: int = Field(
        default=30,
        ge=1,
        description="Admin UI: failed sign-ins allowed per client address in the window, "
        "whatever the usernames; more answer 429.",
    )
    login_concurrency: int = Field(
        default=2,
        ge=1,
        description="Admin UI: passwords checked at once by each server process (each check "
        "takes 64 MiB); a few more sign-ins wait up to 2 seconds, the rest answer 503.",
    )
    auth_max_failures: int = Field(
        default=20,
        ge=1,
        description="Failed token authentications (unknown or revoked token) allowed per client "
        "address in the window, counted by each server process; more answer 429. A valid "
        "token is never refused.",
    )
    auth_window_seconds: float = Field(
        default=60, gt=0, description="Seconds over which failed token authentications count."
    )
    token_create_max: int = Field(
        default=30,
        ge=1,
        description="Tokens one caller may create in the window, counted by each server "
        "process; more answer 429.",
    )
    token_create_window_seconds: float = Field(
        default=60, gt=0, description="Seconds over which token creations are counted."
    )
    log_level: str = "info"
    log_json: bool = True

    @field_validator("prometheus_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_driver(cls, url: str | None) -> str | None:
        # Plain postgresql:// URLs get the psycopg 3 driver rather than psycopg2.
        if url and url.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url or None

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'graylane.db').resolve()}"

    @property
    def embedded(self) -> bool:
        return self.effective_database_url.startswith("sqlite")
