"""Settings built once by an entry point (``ENGAGE_`` environment variables) and passed down."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Runtime configuration of the engine and the HTTP service."""

    model_config = SettingsConfigDict(env_prefix="ENGAGE_", extra="ignore")

    database_url: str = "sqlite:///engage.db"
    #: PostgreSQL: the longest any one wait on the database may take, in seconds (a pooled or
    #: new connection, a statement, a commit); past it the request answers 503 with
    #: Retry-After. A request makes a few such waits. See ``make_engine(timeout=...)``.
    database_timeout_seconds: float = Field(default=5.0, gt=0, le=3600)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: Largest request body accepted, in bytes (larger: 413).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: Start the background learner in this process.
    learner: bool = True
    learner_poll_seconds: float = Field(default=0.5, gt=0)
    #: Requests per second each API key may make, per worker (token bucket); 0: no limit.
    rate_limit_per_second: float = Field(default=0.0, ge=0)
    #: Requests a key may make at once before the rate applies.
    rate_limit_burst: int = Field(default=100, ge=1)
    #: Seconds a verified API key is trusted without re-checking its hash (0: every request).
    api_key_cache_seconds: float = Field(default=5.0, ge=0)
