"""One typed settings object for the whole platform, read from the environment and `.env`."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigurationError(RuntimeError):
    """The settings cannot run the platform; the message names what to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    environment: Environment = Environment.DEVELOPMENT
    service_name: str = "creativeflow"
    log_level: str = "INFO"
    data_dir: Path = Path("./var")

    database_url: str | None = None
    database_pool_size: int = 20
    database_max_overflow: int = 20
    database_echo: bool = False

    redis_url: str | None = None

    secret_key: SecretStr | None = None
    access_token_expire_minutes: int = 30
    refresh_token_expire_days: int = 7
    token_issuer: str = "creativeflow"

    # External identity provider (creatorvault.md): RS256 tokens verified with a PEM key or a JWKS.
    jwt_public_key: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    login_failure_window_seconds: int = 900

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _production_needs_explicit_secrets(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            missing = [
                name
                for name, value in (
                    ("SECRET_KEY", self.secret_key),
                    ("DATABASE_URL", self.database_url),
                    ("ALLOWED_ORIGINS", self.allowed_origins),
                )
                if not value
            ]
            if missing:
                raise ConfigurationError(
                    "ENVIRONMENT=production requires " + ", ".join(missing) + " to be set"
                )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def external_tokens_enabled(self) -> bool:
        return bool(self.jwt_public_key or self.jwt_jwks_url)

    def resolved_database_url(self) -> str:
        """DATABASE_URL, or a SQLite file in the data directory when none is set."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'creativeflow.db').resolve()}"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def signing_key(self) -> str:
        """SECRET_KEY, or in development a random key generated once and kept in the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.is_production:  # unreachable after validation; kept as a guard
            raise ConfigurationError("SECRET_KEY is required in production")
        key_file = self.ensure_data_dir() / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
